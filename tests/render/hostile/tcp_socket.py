# expect: forbidden
import socket
connection = socket.create_connection(("127.0.0.1", __PORT__), timeout=1)
connection.sendall(b"ESCAPED tcp")
