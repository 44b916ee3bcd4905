#!/usr/bin/env python3
"""An Opal host that talks to a device node the way sedutil-cli does, for the test suite.

sedutil-cli cannot be installed here (no Debian or PyPI package), so this host reproduces, from
its documented behaviour, what sedutil puts on the wire and what it reads back:

* Transport, per device name as sedutil decides: /dev/nvme* gets NVMe admin Security Send/Receive
  (and Identify Controller, cdw10 = 1); /dev/s* first gets ATA PASS-THROUGH(12) IDENTIFY DEVICE
  (a1 08 0e 00 01 00 00 00 00 ec 00 00) and, when that returns no data, a 36-byte standard
  INQUIRY, after which the drive is treated as SAS and spoken to with SCSI SECURITY PROTOCOL
  IN/OUT (INC_512 = 1 and 512-byte units as sedutil 1.15.1 does, or INC_512 = 0 and bytes as
  1.20 does). ATA TRUSTED SEND/RECEIVE go in ATA PASS-THROUGH(12) with T_LENGTH in the sector
  count, counted in 512-byte blocks; a reply's sense must be empty or 72h/0Bh (ATA status).
* Every IF-SEND is padded to a multiple of 512 bytes; every IF-RECV asks for 2048 bytes.
* PINs are medium atoms (D0 len …); passwords are hashed with PBKDF2-HMAC-SHA1, 75,000
  iterations, salted with the 20-byte serial field as sedutil 1.15.1 reads it (ATA strings in
  reading order, NVMe bytes as they stand); the MSID and a PSID are sent unhashed.
* Responses are read by token index, as sedutil's DtaResponse does (MSID = token 4, LifeCycle
  = tokens 3 and 4, range columns at 4, 8, 12 …), so a reply shaped differently fails here.
* StartSession uses HostSessionID 105 and Write = 1 even for an Anybody session; Revert ends
  without an EndSession because the TPer has ended the session itself.
* Enterprise SSC drives (Level 0 feature 0x0100 and no Opal feature) get sedutil's
  DtaDevEnterprise sequences: StartSession without credentials but with SessionTimeout = 60000
  named by its name, then ThisSP.Authenticate [ authority, "Challenge" = PIN ] (a False answer is
  "Session Authenticate failed (response = false)"); Get and Set (the Enterprise methods, 06 and
  07) name columns by their names ("startColumn" = "PIN" …) and values are read by token index
  (MSID and MaxRanges = token 5, a band's columns at 5, 9, 13 …); BandMaster N for band N, the
  EraseMaster for Erase; the Locking SP is 0000020500010001 and never activated; a TPer revert
  (SID or PSID) is ThisSP.RevertSP in an Admin SP session.

Commands print one JSON object on standard output and exit 0, or print the failure on standard
error and exit 1. Only the standard library is used: ctypes for the ioctl structures.
"""

import ctypes
import fcntl
import hashlib
import json
import os
import struct
import sys

SG_IO = 0x2285
SG_DXFER_TO_DEV = -2
SG_DXFER_FROM_DEV = -3
NVME_IOCTL_ADMIN_CMD = 0xC0484E41
IO_BUFFER_LENGTH = 2048


class SgIoHdr(ctypes.Structure):
    _fields_ = [("interface_id", ctypes.c_int), ("dxfer_direction", ctypes.c_int),
                ("cmd_len", ctypes.c_ubyte), ("mx_sb_len", ctypes.c_ubyte), ("iovec_count", ctypes.c_ushort),
                ("dxfer_len", ctypes.c_uint), ("dxferp", ctypes.c_void_p), ("cmdp", ctypes.c_void_p),
                ("sbp", ctypes.c_void_p), ("timeout", ctypes.c_uint), ("flags", ctypes.c_uint),
                ("pack_id", ctypes.c_int), ("usr_ptr", ctypes.c_void_p), ("status", ctypes.c_ubyte),
                ("masked_status", ctypes.c_ubyte), ("msg_status", ctypes.c_ubyte), ("sb_len_wr", ctypes.c_ubyte),
                ("host_status", ctypes.c_ushort), ("driver_status", ctypes.c_ushort), ("resid", ctypes.c_int),
                ("duration", ctypes.c_uint), ("info", ctypes.c_uint)]


class NvmeAdminCmd(ctypes.Structure):
    _fields_ = [("opcode", ctypes.c_uint8), ("flags", ctypes.c_uint8), ("rsvd1", ctypes.c_uint16),
                ("nsid", ctypes.c_uint32), ("cdw2", ctypes.c_uint32), ("cdw3", ctypes.c_uint32),
                ("metadata", ctypes.c_uint64), ("addr", ctypes.c_uint64), ("metadata_len", ctypes.c_uint32),
                ("data_len", ctypes.c_uint32), ("cdw10", ctypes.c_uint32), ("cdw11", ctypes.c_uint32),
                ("cdw12", ctypes.c_uint32), ("cdw13", ctypes.c_uint32), ("cdw14", ctypes.c_uint32),
                ("cdw15", ctypes.c_uint32), ("timeout_ms", ctypes.c_uint32), ("result", ctypes.c_uint32)]


class HostFailure(Exception):
    pass


# ---- Transport -------------------------------------------------------------------------------

class Device:
    """One open device node, with sedutil's choice of command set."""

    def __init__(self, path, sas_inc512):
        self.path = path
        self.sas_inc512 = sas_inc512
        self.fd = os.open(path, os.O_RDWR)
        self.kind = None
        self.serial = b"\0" * 20
        self.model = ""
        if path.startswith("/dev/nvme"):
            self._identify_nvme()
        elif path.startswith("/dev/s"):
            self._identify_ata_or_sas()
        else:
            raise HostFailure("unknown drive type " + path)

    def close(self):
        os.close(self.fd)

    def _sg(self, cdb, direction, buffer, sense_size=32):
        cdb_buf = (ctypes.c_ubyte * len(cdb)).from_buffer_copy(bytes(cdb))
        sense = (ctypes.c_ubyte * sense_size)()
        hdr = SgIoHdr(interface_id=ord("S"), dxfer_direction=direction, cmd_len=len(cdb), mx_sb_len=sense_size,
                      dxfer_len=len(buffer), dxferp=ctypes.addressof(buffer), cmdp=ctypes.addressof(cdb_buf),
                      sbp=ctypes.addressof(sense), timeout=60000)
        fcntl.ioctl(self.fd, SG_IO, hdr)
        return hdr, bytes(sense)

    def _identify_ata_or_sas(self):
        buffer = (ctypes.c_ubyte * 512)()
        try:
            self._sg([0xA1, 4 << 1, 0x0E, 0, 1, 0, 0, 0, 0, 0xEC, 0, 0], SG_DXFER_FROM_DEV, buffer)
            data = bytes(buffer)
        except OSError:
            data = bytes(512)
        if data == bytes(512):
            # No ATA behind this node: sedutil's identify_SAS.
            inquiry = (ctypes.c_ubyte * IO_BUFFER_LENGTH)()
            hdr, _ = self._sg([0x12, 0, 0, 0, 36, 0], SG_DXFER_FROM_DEV, inquiry, sense_size=18)
            got = hdr.dxfer_len - hdr.resid
            raw = bytes(inquiry)
            if hdr.masked_status != 0 or got != 36 or raw[0] & 0x1F != 0:
                raise HostFailure("neither ATA IDENTIFY nor a 36-byte disk INQUIRY answered (got %d bytes)" % got)
            self.kind = "sas"
            self.serial = raw[8:16] + bytes(12)
            self.model = raw[16:32].decode("ascii", "replace").strip()
            return
        self.kind = "ata"
        # ATA strings: two characters a word, the first in the high byte; sedutil 1.15.1 swaps them.
        def swapped(raw):
            return bytes(b for i in range(0, len(raw), 2) for b in (raw[i + 1], raw[i]))
        self.serial = swapped(data[20:40])
        self.model = swapped(data[54:94]).decode("ascii", "replace").strip()

    def _identify_nvme(self):
        buffer = (ctypes.c_ubyte * 4096)()
        cmd = NvmeAdminCmd(opcode=0x06, nsid=0, addr=ctypes.addressof(buffer), data_len=4096, cdw10=1)
        fcntl.ioctl(self.fd, NVME_IOCTL_ADMIN_CMD, cmd)
        data = bytes(buffer)
        self.kind = "nvme"
        self.serial = data[4:24]
        self.model = data[24:64].decode("ascii", "replace").strip()

    def if_send(self, protocol, comid, payload):
        padded = bytes(payload) + bytes((-len(payload)) % 512)
        buffer = (ctypes.c_ubyte * len(padded)).from_buffer_copy(padded)
        if self.kind == "nvme":
            self._nvme_security(0x81, protocol, comid, buffer)
        elif self.kind == "sas":
            self._scsi_security(0xB5, protocol, comid, buffer, SG_DXFER_TO_DEV)
        else:
            self._ata_trusted(0x5E, protocol, comid, buffer)

    def if_recv(self, protocol, comid, length=IO_BUFFER_LENGTH):
        buffer = (ctypes.c_ubyte * length)()
        if self.kind == "nvme":
            self._nvme_security(0x82, protocol, comid, buffer)
        elif self.kind == "sas":
            self._scsi_security(0xA2, protocol, comid, buffer, SG_DXFER_FROM_DEV)
        else:
            self._ata_trusted(0x5C, protocol, comid, buffer)
        return bytes(buffer)

    def _nvme_security(self, opcode, protocol, comid, buffer):
        cmd = NvmeAdminCmd(opcode=opcode, addr=ctypes.addressof(buffer), data_len=len(buffer),
                           cdw10=protocol << 24 | comid << 8, cdw11=len(buffer))
        if fcntl.ioctl(self.fd, NVME_IOCTL_ADMIN_CMD, cmd) != 0:
            raise HostFailure("NVMe Security %s failed" % ("Receive" if opcode == 0x82 else "Send"))

    def _scsi_security(self, opcode, protocol, comid, buffer, direction):
        length = len(buffer)
        if self.sas_inc512:
            cdb = [opcode, protocol, comid >> 8, comid & 0xFF, 0x80, 0] + list(struct.pack(">I", length // 512)) + [0, 0]
        else:
            cdb = [opcode, protocol, comid >> 8, comid & 0xFF, 0, 0] + list(struct.pack(">I", length)) + [0, 0]
        hdr, _ = self._sg(cdb, direction, buffer)
        if hdr.masked_status != 0:
            raise HostFailure("SECURITY PROTOCOL %s failed" % ("IN" if opcode == 0xA2 else "OUT"))

    def _ata_trusted(self, command, protocol, comid, buffer):
        receive = command == 0x5C
        cdb = [0xA1, (4 if receive else 5) << 1, 0x0E if receive else 0x06, protocol, len(buffer) // 512, 0,
               comid & 0xFF, comid >> 8, 0, command, 0, 0]
        _, sense = self._sg(cdb, SG_DXFER_FROM_DEV if receive else SG_DXFER_TO_DEV, buffer)
        if not (sense[0] == 0 and sense[1] == 0) and not (sense[0] == 0x72 and sense[1] == 0x0B):
            raise HostFailure("ATA PASS-THROUGH answered with a sense that is not an ATA status")
        if sense[11] != 0:
            raise HostFailure("ATA error 0x%02x" % sense[11])


# ---- Tokens ----------------------------------------------------------------------------------

STARTLIST, ENDLIST, STARTNAME, ENDNAME, CALL, ENDOFDATA, ENDOFSESSION = 0xF0, 0xF1, 0xF2, 0xF3, 0xF8, 0xF9, 0xFA
SMUID = bytes.fromhex("00000000000000FF")
ADMIN_SP = bytes.fromhex("0000020500000001")
LOCKING_SP = bytes.fromhex("0000020500000002")
SID = bytes.fromhex("0000000900000006")
PSID = bytes.fromhex("000000090001FF01")
ADMIN1 = bytes.fromhex("0000000900010001")
C_PIN_MSID = bytes.fromhex("0000000B00008402")
C_PIN_SID = bytes.fromhex("0000000B00000001")
LOCKING_INFO = bytes.fromhex("0000080100000001")
MBR_CONTROL = bytes.fromhex("0000080300000001")
THIS_SP = bytes.fromhex("0000000000000001")
ENTERPRISE_LOCKING_SP = bytes.fromhex("0000020500010001")
ENTERPRISE_LOCKING_INFO = bytes.fromhex("0000080100000000")
BANDMASTER0 = 0x0000000900008001
ERASEMASTER = bytes.fromhex("0000000900008401")
C_PIN_ERASEMASTER = bytes.fromhex("0000000B00008401")
METHOD = {name: bytes.fromhex(uid) for name, uid in [
    ("Properties", "000000000000FF01"), ("StartSession", "000000000000FF02"), ("Get", "0000000600000016"),
    ("Set", "0000000600000017"), ("Activate", "0000000600000203"), ("Revert", "0000000600000202"),
    ("RevertSP", "0000000600000011"), ("GenKey", "0000000600000010"), ("Erase", "0000000600000803"),
    ("EGet", "0000000600000006"), ("ESet", "0000000600000007"), ("EAuthenticate", "000000060000000C")]}


def uint(value):
    if value < 64:
        return bytes([value])
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def atom(data):
    data = bytes(data)
    if len(data) < 16:
        return bytes([0xA0 | len(data)]) + data
    return bytes([0xD0 | (len(data) >> 8), len(data) & 0xFF]) + data


def pin_token(pin):
    # sedutil's DtaHashPwd always yields a medium atom, hashed or not.
    return bytes([0xD0, len(pin)]) + pin


def name(key, value):
    return bytes([STARTNAME]) + key + value + bytes([ENDNAME])


def method_call(invoking, method, params=b""):
    return (bytes([CALL]) + atom(invoking) + atom(METHOD[method]) + bytes([STARTLIST]) + params + bytes([ENDLIST])
            + bytes([ENDOFDATA, STARTLIST, 0, 0, 0, ENDLIST]))


def decode(data):
    """Flat token list as sedutil indexes it: control bytes as ints, atoms as ints or bytes."""
    tokens, i = [], 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            # Tiny atoms: bit 6 marks a signed six-bit value.
            tokens.append(b & 0x3F if not b & 0x40 else ((b & 0x3F) ^ 0x20) - 0x20)
            i += 1
            continue
        if b < 0xC0:
            n, start, is_bytes = b & 0x0F, i + 1, bool(b & 0x20)
        elif b < 0xE0:
            n, start, is_bytes = ((b & 0x07) << 8) | data[i + 1], i + 2, bool(b & 0x10)
        elif b < 0xF0:
            n, start, is_bytes = int.from_bytes(data[i + 1:i + 4], "big"), i + 4, bool(b & 0x02)
        else:
            if b != 0xFF:
                tokens.append(("ctl", b))
            i += 1
            continue
        raw = data[start:start + n]
        if len(raw) != n:
            raise HostFailure("truncated atom in the response")
        tokens.append(bytes(raw) if is_bytes else int.from_bytes(raw, "big"))
        i = start + n
    return tokens


# ---- Sessions --------------------------------------------------------------------------------

class Host:
    def __init__(self, device):
        self.device = device
        self.tsn = 0
        self.hsn = 0
        self.features = self.discovery0()
        opal = self.features.get(0x0203) or self.features.get(0x0200)
        enterprise = self.features.get(0x0100)
        self.enterprise = opal is None and enterprise is not None
        if opal is None and enterprise is None:
            raise HostFailure("no Opal or Enterprise SSC feature in Level 0 Discovery")
        self.comid = struct.unpack(">H", (opal or enterprise)[0:2])[0]

    def discovery0(self):
        data = self.device.if_recv(1, 1)
        length = struct.unpack(">I", data[0:4])[0]
        if length < 44 or length + 4 > len(data):
            raise HostFailure("Level 0 Discovery header length %d" % length)
        features, offset = {}, 48
        while offset + 4 <= length + 4:
            code, _, flen = struct.unpack(">HBB", data[offset:offset + 4])
            features[code] = data[offset + 4:offset + 4 + flen]
            offset += 4 + flen
        return features

    def exchange(self, payload):
        sub = struct.pack(">6xHI", 0, len(payload)) + payload + bytes((-len(payload)) % 4)
        packet = struct.pack(">IIIHHII", self.tsn, self.hsn, 0, 0, 0, 0, len(sub)) + sub
        compacket = struct.pack(">IHHIII", 0, self.comid, 0, 0, 0, len(packet)) + packet
        self.device.if_send(1, self.comid, compacket)
        for _ in range(100):
            reply = self.device.if_recv(1, self.comid)
            cp_len = struct.unpack(">I", reply[16:20])[0]
            outstanding = struct.unpack(">I", reply[8:12])[0]
            if cp_len == 0 and outstanding != 0:
                continue
            pkt_len = struct.unpack(">I", reply[40:44])[0]
            sub_len = struct.unpack(">I", reply[52:56])[0]
            if cp_len == 0 or pkt_len == 0 or sub_len == 0:
                raise HostFailure("One or more header fields have 0 length")
            return decode(reply[56:56 + sub_len])
        raise HostFailure("the drive never answered")

    def call(self, invoking, method, params=b""):
        tokens = self.exchange(method_call(invoking, method, params))
        status = method_status(tokens)
        if status != 0:
            raise HostFailure("method %s status %d" % (method, status))
        return tokens

    def properties(self):
        host = b"".join(name(atom(k.encode()), uint(v)) for k, v in [
            ("MaxComPacketSize", 2048), ("MaxPacketSize", 2028), ("MaxIndTokenSize", 1992), ("MaxPackets", 1),
            ("MaxSubpackets", 1), ("MaxMethods", 1)])
        # DtaDevEnterprise names the parameter "HostProperties"; DtaDevOpal numbers it 0.
        key = atom(b"HostProperties") if self.enterprise else uint(0)
        tokens = self.call(SMUID, "Properties", name(key, bytes([STARTLIST]) + host + bytes([ENDLIST])))
        props = {}
        for i in range(len(tokens) - 2):
            if tokens[i] == ("ctl", STARTNAME) and isinstance(tokens[i + 1], bytes) and isinstance(tokens[i + 2], int):
                props.setdefault(tokens[i + 1].decode("ascii", "replace"), tokens[i + 2])
        return props

    def start_session(self, sp, challenge=None, authority=None):
        self.tsn = self.hsn = 0
        params = uint(105) + atom(sp) + uint(1)
        if challenge is not None and not self.enterprise:
            params += name(uint(0), pin_token(challenge)) + name(uint(3), atom(authority))
        if self.enterprise:
            params += name(atom(b"SessionTimeout"), uint(60000))
        tokens = self.exchange(method_call(SMUID, "StartSession", params))
        if len(tokens) < 6 or tokens[0] != ("ctl", CALL) or method_status(tokens) != 0:
            raise HostFailure("Session start failed rc = %s" % method_status(tokens))
        self.hsn, self.tsn = tokens[4], tokens[5]
        if challenge is not None and self.enterprise:
            self.authenticate(authority, challenge)

    def authenticate(self, authority, challenge):
        params = atom(authority) + (name(atom(b"Challenge"), pin_token(challenge)) if challenge else b"")
        tokens = self.call(THIS_SP, "EAuthenticate", params)
        # sedutil reads the answer as token 1: [ F0 <bool> F1 ... ]
        if len(tokens) < 2 or tokens[1] == 0:
            raise HostFailure("Session Authenticate failed (response = false)")

    def eget(self, table, start, end):
        cells = name(atom(b"startColumn"), atom(start.encode())) + name(atom(b"endColumn"), atom(end.encode()))
        return self.call(table, "EGet", bytes([STARTLIST]) + cells + bytes([ENDLIST]))

    def eset(self, table, columns):
        values = b"".join(name(atom(c.encode()), v) for c, v in columns)
        self.call(table, "ESet", bytes([STARTLIST, ENDLIST, STARTLIST, STARTLIST]) + values + bytes([ENDLIST, ENDLIST]))

    def end_session(self, expect_abort=False):
        if not expect_abort:
            tokens = self.exchange(bytes([ENDOFSESSION]))
            if tokens[:1] != [("ctl", ENDOFSESSION)]:
                raise HostFailure("EndSession Failed")
        self.tsn = self.hsn = 0

    def get(self, table, start, end):
        cells = name(uint(3), uint(start)) + name(uint(4), uint(end))
        return self.call(table, "Get", bytes([STARTLIST]) + cells + bytes([ENDLIST]))

    def set(self, table, columns):
        values = b"".join(name(uint(c), v) for c, v in columns)
        self.call(table, "Set", name(uint(1), bytes([STARTLIST]) + values + bytes([ENDLIST])))


def method_status(tokens):
    for i in range(len(tokens) - 1, 0, -1):
        if tokens[i] == ("ctl", STARTLIST) and tokens[i - 1] == ("ctl", ENDOFDATA):
            return tokens[i + 1] if i + 1 < len(tokens) else None
    return None


# Which serial bytes salt the hash: "reported" (sedutil 1.15+) or "trimmed" (builds and scripts
# that take the serial from udev, spaces removed). Set with --salt=NAME.
SALT = "reported"


def hashed(password, device, no_hash):
    if no_hash:
        return password.encode()
    salt = device.serial.strip(b" \0") if SALT == "trimmed" else device.serial
    return hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 75000, 32)


def locking_range_uid(n):
    return bytes.fromhex("0000080200000001") if n == 0 else bytes.fromhex("00000802000300") + bytes([n])


# ---- Commands (sedutil 1.20's sequences) -------------------------------------------------------

def cmd_query(host, device, args):
    props = host.properties()
    locking = host.features.get(0x0002, b"\0")
    return {"kind": device.kind, "model": device.model, "serial": device.serial.decode("ascii", "replace"),
            "comID": host.comid, "features": sorted(host.features), "locked": bool(locking[0] & 0x04),
            "lockingEnabled": bool(locking[0] & 0x02), "mbrDone": bool(locking[0] & 0x20),
            "singleUserAny": bool(host.features.get(0x0201, b"\0" * 5)[4] & 0x01),
            "properties": props}


def get_msid(host):
    host.start_session(ADMIN_SP)
    tokens = host.get(C_PIN_MSID, 3, 3)
    host.end_session()
    if not isinstance(tokens[4], bytes):
        raise HostFailure("unable to retrieve MSID")
    return tokens[4]


def cmd_initialsetup(host, device, args):
    password = hashed(args[0], device, "-n" in args)
    msid = get_msid(host)
    host.start_session(ADMIN_SP, msid, SID)                        # takeOwnership
    host.set(C_PIN_SID, [(3, pin_token(password))])
    host.end_session()
    host.start_session(ADMIN_SP, password, SID)                    # activateLockingSP
    tokens = host.get(LOCKING_SP, 6, 6)
    if tokens[3] != 6 or tokens[4] != 8:
        raise HostFailure("Locking SP lifecycle is not Manufactured-Inactive")
    host.call(LOCKING_SP, "Activate")
    host.end_session()
    host.start_session(LOCKING_SP, password, ADMIN1)               # configureLockingRange(0, disable)
    host.set(locking_range_uid(0), [(5, uint(0)), (6, uint(0))])
    host.end_session()
    host.start_session(LOCKING_SP, password, ADMIN1)               # setLockingRange(0, RW)
    host.set(locking_range_uid(0), [(7, uint(0)), (8, uint(0))])
    host.end_session()
    host.start_session(LOCKING_SP, password, ADMIN1)               # setMBRDone on, setMBREnable on
    host.set(MBR_CONTROL, [(2, uint(1))])
    host.end_session()
    host.start_session(LOCKING_SP, password, ADMIN1)
    host.set(MBR_CONTROL, [(1, uint(1))])
    host.end_session()
    return {"initialsetup": "complete"}


def user_uid(rng):
    """The user that owns range rng in Single User Mode: LR0 is User1, LR1 User2, …"""
    return bytes.fromhex("000000090003") + (rng + 1).to_bytes(2, "big")


def cmd_setup_sum(host, device, args):
    """sedutil's --setup_SUM RANGE START LENGTH ADMINPW USERPW on a new drive: take ownership,
    Activate in Single User Mode for one range, the range's user (empty PIN) sets its bounds,
    enables locking and rekeys it, Admin1 erases it, the user opens it and sets its password."""
    rng, start, length = int(args[0]), int(args[1]), int(args[2])
    admin, user_pin = hashed(args[3], device, "-n" in args), hashed(args[4], device, "-n" in args)
    msid = get_msid(host)
    host.start_session(ADMIN_SP, msid, SID)
    host.set(C_PIN_SID, [(3, pin_token(admin))])
    host.end_session()
    host.start_session(ADMIN_SP, admin, SID)
    selection = bytes([STARTLIST]) + atom(locking_range_uid(rng)) + bytes([ENDLIST])
    try:
        host.call(LOCKING_SP, "Activate", name(bytes([0x83, 0x06, 0x00, 0x00]), selection))
    finally:
        host.end_session()
    user = user_uid(rng)
    host.start_session(LOCKING_SP, b"", user)                     # setupLockingRange_SUM
    host.set(locking_range_uid(rng), [(3, uint(start)), (4, uint(length)), (5, uint(1)), (6, uint(1)),
                                      (7, uint(0)), (8, uint(0))])
    key = host.get(locking_range_uid(rng), 10, 10)[4]             # rekeyLockingRange_SUM
    host.call(key, "GenKey")
    host.end_session()
    host.start_session(LOCKING_SP, admin, ADMIN1)                 # eraseLockingRange_SUM
    host.call(locking_range_uid(rng), "Erase")
    host.end_session()
    host.start_session(LOCKING_SP, b"", user)                     # setLockingRange_SUM READWRITE
    host.set(locking_range_uid(rng), [(5, uint(1)), (6, uint(1)), (7, uint(0)), (8, uint(0))])
    host.end_session()
    host.start_session(LOCKING_SP, b"", user)                     # setNewPassword_SUM
    host.set(bytes.fromhex("0000000B0003") + (rng + 1).to_bytes(2, "big"), [(3, pin_token(user_pin))])
    host.end_session()
    return {"singleUserRange": rng, "user": "User%d" % (rng + 1)}


def cmd_setlockingrange_sum(host, device, args):
    """sedutil's --setLockingRange_SUM RANGE RW|RO|LK USERPW: the range's own user locks or opens it."""
    rng, state, password = int(args[0]), args[1].upper(), hashed(args[2], device, "-n" in args)
    locked = {"RW": (0, 0), "RO": (0, 1), "LK": (1, 1)}[state]
    host.start_session(LOCKING_SP, password, user_uid(rng))
    host.set(locking_range_uid(rng), [(7, uint(locked[0])), (8, uint(locked[1]))])
    host.end_session()
    return {"range": rng, "state": state}


def cmd_enablelockingrange(host, device, args):
    rng, password = int(args[0]), hashed(args[1], device, "-n" in args)
    host.start_session(LOCKING_SP, password, ADMIN1)
    host.set(locking_range_uid(rng), [(5, uint(1)), (6, uint(1))])
    host.end_session()
    return {"range": rng, "lockingEnabled": True}


def cmd_setlockingrange(host, device, args):
    rng, state, password = int(args[0]), args[1].upper(), hashed(args[2], device, "-n" in args)
    locked = {"RW": (0, 0), "RO": (0, 1), "LK": (1, 1)}[state]
    host.start_session(LOCKING_SP, password, ADMIN1)
    host.set(locking_range_uid(rng), [(7, uint(locked[0])), (8, uint(locked[1]))])
    host.end_session()
    return {"range": rng, "state": state}


def cmd_setmbrdone(host, device, args):
    on, password = args[0] == "on", hashed(args[1], device, "-n" in args)
    host.start_session(LOCKING_SP, password, ADMIN1)
    host.set(MBR_CONTROL, [(2, uint(1 if on else 0))])
    host.end_session()
    return {"mbrDone": on}


def cmd_listlockingranges(host, device, args):
    password = hashed(args[0], device, "-n" in args)
    host.start_session(LOCKING_SP, password, ADMIN1)
    count = host.get(LOCKING_INFO, 4, 4)[4] + 1
    ranges = []
    for n in range(count):
        t = host.get(locking_range_uid(n), 3, 10)
        if [t[3], t[7], t[11], t[15], t[19], t[23]] != [3, 4, 5, 6, 7, 8]:
            raise HostFailure("range %d columns are not where sedutil reads them: %r" % (n, t[:26]))
        ranges.append({"range": n, "start": t[4], "length": t[8], "readLockEnabled": bool(t[12]),
                       "writeLockEnabled": bool(t[16]), "readLocked": bool(t[20]), "writeLocked": bool(t[24])})
    host.end_session()
    return {"ranges": ranges}


def cmd_revertnoerase(host, device, args):
    password = hashed(args[0], device, "-n" in args)
    host.start_session(LOCKING_SP, password, ADMIN1)
    # KeepGlobalRangeKey, named 0x060000 and encoded as sedutil does (83 06 00 00).
    host.call(THIS_SP, "RevertSP", name(bytes([0x83, 0x06, 0x00, 0x00]), uint(1)))
    host.end_session(expect_abort=True)
    return {"revertLockingSP": "complete"}


def cmd_reverttper(host, device, args):
    password, authority = hashed(args[0], device, "-n" in args), SID
    if "--psid" in args:
        password, authority = args[0].encode(), PSID
    host.start_session(ADMIN_SP, password, authority)
    # DtaDevOpal: AdminSP.Revert; DtaDevEnterprise: ThisSP.RevertSP in the Admin SP session.
    if host.enterprise:
        host.call(THIS_SP, "RevertSP")
    else:
        host.call(ADMIN_SP, "Revert")
    host.end_session(expect_abort=True)
    return {"revertTPer": "complete"}


# ---- Enterprise SSC commands (sedutil's DtaDevEnterprise sequences) -------------------------

def band_uid(n):
    return (0x0000080200000001 + n).to_bytes(8, "big")


def bandmaster(n):
    return (BANDMASTER0 + n).to_bytes(8, "big")


def cpin_of(authority):
    return authority[:3] + b"\x0b" + authority[4:]


def enterprise_msid(host):
    host.start_session(ADMIN_SP)
    tokens = host.eget(C_PIN_MSID, "PIN", "PIN")
    host.end_session()
    if len(tokens) < 6 or not isinstance(tokens[5], bytes):
        raise HostFailure("unable to retrieve MSID")
    return tokens[5]


def enterprise_set_as(host, authority, pin, table, columns):
    host.start_session(ENTERPRISE_LOCKING_SP, pin, authority)
    host.eset(table, columns)
    host.end_session()


def enterprise_max_ranges(host):
    host.start_session(ENTERPRISE_LOCKING_SP)
    tokens = host.eget(ENTERPRISE_LOCKING_INFO, "MaxRanges", "MaxRanges")
    host.end_session()
    return tokens[5]


def cmd_e_initialsetup(host, device, args):
    """--initialSetup: takeOwnership (SID from the MSID, then initLSPUsers: BandMaster0 and the
    EraseMaster from the MSID), setLockingRange(0, RW), configureLockingRange(0, RLE|WLE)."""
    password = hashed(args[0], device, "-n" in args)
    msid = enterprise_msid(host)
    host.start_session(ADMIN_SP, msid, SID)
    host.eset(C_PIN_SID, [("PIN", pin_token(password))])
    host.end_session()
    for authority in (bandmaster(0), ERASEMASTER):
        enterprise_set_as(host, authority, msid, cpin_of(authority), [("PIN", pin_token(password))])
    enterprise_set_as(host, bandmaster(0), password, band_uid(0), [("WriteLocked", uint(0)), ("ReadLocked", uint(0))])
    enterprise_set_as(host, bandmaster(0), password, band_uid(0),
                      [("ReadLockEnabled", uint(1)), ("WriteLockEnabled", uint(1)),
                       ("LockOnReset", bytes([STARTLIST, 0, ENDLIST]))])
    return {"initialsetup": "complete"}


def cmd_e_setlockingrange(host, device, args):
    rng, state, password = int(args[0]), args[1].upper(), hashed(args[2], device, "-n" in args)
    if state == "RO":
        raise HostFailure("Read Only locking state is unsupported in Enterprise SSC")
    if rng > enterprise_max_ranges(host):
        raise HostFailure("Requested locking range %d greater than MaxRanges" % rng)
    locked = uint(1 if state == "LK" else 0)
    enterprise_set_as(host, bandmaster(rng), password, band_uid(rng), [("WriteLocked", locked), ("ReadLocked", locked)])
    return {"range": rng, "state": state}


def cmd_e_listlockingranges(host, device, args):
    """--listLockingRange BAND PASSWORD (one band, as BandMaster BAND: sedutil's list of every
    band would authenticate to BandMaster1… with the same password and spend their tries)."""
    rng, password = int(args[0]), hashed(args[1], device, "-n" in args)
    host.start_session(ENTERPRISE_LOCKING_SP, password, bandmaster(rng))
    t = host.eget(band_uid(rng), "Name", "LockOnReset")
    host.end_session()
    names = [t[4 + 4 * k] for k in range(8)]
    expected = [b"Name", b"CommonName", b"RangeStart", b"RangeLength", b"ReadLockEnabled", b"WriteLockEnabled",
                b"ReadLocked", b"WriteLocked"]
    if names != expected:
        raise HostFailure("band %d columns are not where sedutil reads them: %r" % (rng, t[:40]))
    return {"ranges": [{"range": rng, "name": t[5].decode("ascii", "replace"), "start": t[13], "length": t[17],
                        "readLockEnabled": bool(t[21]), "writeLockEnabled": bool(t[25]), "readLocked": bool(t[29]),
                        "writeLocked": bool(t[33]), "lockOnReset": t[37] == ("ctl", STARTLIST) and isinstance(t[38], int)}]}


def cmd_e_eraselockingrange(host, device, args):
    rng, password = int(args[0]), hashed(args[1], device, "-n" in args)
    host.start_session(ENTERPRISE_LOCKING_SP, password, ERASEMASTER)
    host.call(band_uid(rng), "Erase")
    host.end_session()
    return {"range": rng, "erased": True}


ENTERPRISE_COMMANDS = {"initialsetup": cmd_e_initialsetup, "setlockingrange": cmd_e_setlockingrange,
                       "listlockingranges": cmd_e_listlockingranges, "eraselockingrange": cmd_e_eraselockingrange}


COMMANDS = {"query": cmd_query, "initialsetup": cmd_initialsetup, "setup_sum": cmd_setup_sum, "enablelockingrange": cmd_enablelockingrange,
            "setlockingrange": cmd_setlockingrange, "setlockingrange_sum": cmd_setlockingrange_sum,
            "setmbrdone": cmd_setmbrdone,
            "listlockingranges": cmd_listlockingranges, "revertnoerase": cmd_revertnoerase,
            "reverttper": cmd_reverttper, "eraselockingrange": None}


def main(argv):
    if len(argv) < 3 or argv[1] not in COMMANDS:
        print("usage: %s COMMAND [ARGS…] DEVICE [-n] [--sas-inc512=0|1] [--psid] [--salt=reported|trimmed]" % argv[0], file=sys.stderr)
        return 64
    options = [a for a in argv[2:] if a.startswith("-")]
    positional = [a for a in argv[2:] if not a.startswith("-")]
    sas_inc512 = "--sas-inc512=0" not in options
    global SALT
    for option in options:
        if option.startswith("--salt="):
            SALT = option.split("=", 1)[1]
    device = host = None
    try:
        device = Device(positional[-1], sas_inc512)
        host = Host(device)
        command = (ENTERPRISE_COMMANDS if host.enterprise else {}).get(argv[1]) or COMMANDS[argv[1]]
        if command is None:
            raise HostFailure("%s is an Enterprise SSC command" % argv[1])
        result = command(host, device, positional[:-1] + options)
        result["enterprise"] = host.enterprise
        result["transport"] = device.kind
        print(json.dumps(result))
        return 0
    except (HostFailure, OSError, IndexError, KeyError, struct.error) as failure:
        print("%s: %s" % (argv[1], failure), file=sys.stderr)
        # As sedutil's DtaSession destructor does: end a session left open by the failure.
        if host is not None and host.tsn:
            try:
                host.end_session()
            except (HostFailure, OSError, IndexError, struct.error):
                pass
        return 1
    finally:
        if device is not None:
            device.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
