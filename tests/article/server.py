# server.py - the article's guide step 2 server (examples/article/server.py
# is the article's own, byte for byte) with two changes, so that a test can
# run it on any machine, with no network of its own: the port comes from the
# command line (0 = any free port), and the chosen address is printed first,
# so the test can find it.
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
