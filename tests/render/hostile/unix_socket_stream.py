# expect: forbidden
import socket
# A named Unix socket (docker.sock, /dev/log, ...) crosses network namespaces.
client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
client.connect("__UNIX_STREAM__")
client.sendall(b"ESCAPED unix stream")
