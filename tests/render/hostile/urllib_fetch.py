# expect: forbidden
import urllib.request
body = urllib.request.urlopen("http://127.0.0.1:__PORT__/exfiltrate?x=1", timeout=1).read()
