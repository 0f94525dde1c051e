# client.py - the article's Step 3 client, as printed there, with the port
# taken from the command line.
import socket
import sys

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('localhost', int(sys.argv[1])))
data = client.recv(1024)
print("Server says:", data.decode())
client.send(b"Thanks, Server!")
client.close()
