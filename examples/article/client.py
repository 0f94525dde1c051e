# client.py
import socket
client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('localhost', 12345))
data = client.recv(1024)
print("Server says:", data.decode())
client.send(b"Thanks, Server!")
client.close()
