# expect: forbidden
import socket
# A connected datagram pair may still sendto() any named socket.
left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
left.sendto(b"ESCAPED socketpair", "__UNIX_DGRAM__")
