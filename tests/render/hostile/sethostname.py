# expect: forbidden
import socket
socket.sethostname("pwned-by-a-chart")
