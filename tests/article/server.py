# server.py - the article's Step 2 server, as printed there, with two
# changes for testing: the port comes from the command line (0 = any free
# port), and the chosen address is printed first, so a test can find it.
import socket
import sys

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(('localhost', int(sys.argv[1])))
server.listen(1)
print("listening on %s:%d" % server.getsockname(), flush=True)
print("Waiting for connection...")
client_socket, address = server.accept()
print(f"Connected to {address}")
client_socket.send(b"Hello from server!")
message = client_socket.recv(1024).decode()
print("Client says:", message)
client_socket.close()
server.close()
