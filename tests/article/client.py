# client.py - the article's guide step 3 client (examples/article/client.py
# is the article's own, byte for byte) with one change, so that a test can
# run it on any machine: the port is taken from the command line.
import socket
import sys

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(('localhost', int(sys.argv[1])))
data = client.recv(1024)
print("Server says:", data.decode())
client.send(b"Thanks, Server!")
client.close()
