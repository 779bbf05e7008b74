# expect: forbidden
import socket
client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
client.sendto(b"ESCAPED unix dgram", "__UNIX_DGRAM__")
