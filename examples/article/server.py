# server.py
import socket
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(('localhost', 12345))
server.listen(1)
print("Waiting for connection...")
client_socket, address = server.accept()
print(f"Connected to {address}")
client_socket.send(b"Hello from server!")
message = client_socket.recv(1024).decode()
print("Client says:", message)
client_socket.close()
server.close()
