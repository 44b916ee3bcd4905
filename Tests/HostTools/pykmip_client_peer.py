"""PyKMIP's own client (ProxyKmipClient) run through a key manager's whole object life against a
KMIP server: create and register keys and secrets, get them back, locate by name, read
attributes, activate, revoke and destroy. Prints one JSON object of what it saw; the Swift test
decides what is right. Usage: pykmip_client_peer.py VERSION HOST PORT CERT KEY CA
(VERSION: 1.2, 1.4 or 2.0)."""
import json
import sys

from kmip.core import enums
from kmip.pie import objects
from kmip.pie.client import ProxyKmipClient

VERSIONS = {"1.2": enums.KMIPVersion.KMIP_1_2, "1.4": enums.KMIPVersion.KMIP_1_4, "2.0": enums.KMIPVersion.KMIP_2_0}


def failure(call):
    """Runs call; returns None when it succeeds, else the exception's class name."""
    try:
        call()
        return None
    except Exception as error:  # PyKMIP raises KmipOperationFailure, or ValueError on bad answers
        return type(error).__name__ + ": " + str(error)[:120]


def main(argv):
    version, host, port, cert, key, ca = argv[1:7]
    seen = {}
    with ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                         kmip_version=VERSIONS[version]) as client:
        created = client.create(enums.CryptographicAlgorithm.AES, 256, name="peer-created-" + version)
        got = client.get(created)
        seen["created"] = {"algorithm": got.cryptographic_algorithm.name, "length": got.cryptographic_length,
                           "bytes": len(got.value)}

        material = bytes(range(32))
        registered = client.register(objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 256, material,
                                                          name="peer-key-" + version))
        seen["registeredKeyRoundTrips"] = client.get(registered).value == material

        secret = objects.SecretData(b"peer secret " + version.encode(), enums.SecretDataType.PASSWORD,
                                    name="peer-secret-" + version)
        secret_id = client.register(secret)
        seen["secretRoundTrips"] = client.get(secret_id).value == b"peer secret " + version.encode()

        seen["locateByName"] = client.locate(attributes=[
            client.attribute_factory.create_attribute(enums.AttributeType.NAME, "peer-key-" + version)]) == [registered]

        uid, attributes = client.get_attributes(registered, ["Name", "State", "Cryptographic Algorithm"])
        by_name = {a.attribute_name.value: a.attribute_value for a in attributes}
        seen["attributes"] = {
            "uid": uid == registered,
            "name": str(by_name["Name"].name_value) if "Name" in by_name else None,
            "state": by_name["State"].value.name if "State" in by_name else None,
            "algorithm": by_name["Cryptographic Algorithm"].value.name if "Cryptographic Algorithm" in by_name else None,
        }
        seen["attributeList"] = sorted(client.get_attribute_list(registered))

        client.activate(registered)
        seen["stateAfterActivate"] = client.get_attributes(registered, ["State"])[1][0].attribute_value.value.name
        seen["destroyActive"] = failure(lambda: client.destroy(registered))
        client.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, registered)
        seen["stateAfterRevoke"] = client.get_attributes(registered, ["State"])[1][0].attribute_value.value.name
        seen["destroyRevoked"] = failure(lambda: client.destroy(registered))
        seen["getDestroyed"] = failure(lambda: client.get(registered))
        seen["destroyUnactivated"] = failure(lambda: client.destroy(secret_id))
    print(json.dumps(seen, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
