"""Baseline for scripts/bench: PyKMIP's own client doing Get, one connection and a new connection per Get."""
import sys
import time

from kmip.pie.client import ProxyKmipClient
from kmip.core import enums

host, port, cert, key, ca, uid = sys.argv[1:7]


def client():
    return ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                           kmip_version=enums.KMIPVersion.KMIP_1_2)


with client() as c:
    c.get(uid)
    n, start = 0, time.monotonic()
    while time.monotonic() - start < 3:
        c.get(uid)
        n += 1
    print("pykmip_get_per_second_one_connection %.1f" % (n / (time.monotonic() - start)))

n, start = 0, time.monotonic()
while time.monotonic() - start < 3:
    with client() as c:
        c.get(uid)
    n += 1
print("pykmip_get_per_second_new_connection %.1f" % (n / (time.monotonic() - start)))
