#!/usr/bin/python3
"""Sealed export files (sync/FORMAT.md section 6) made by a second, independent implementation
(python3-cryptography), for the known-answer test in sealed_export_test.cc and the seed corpus
of sync_sealed_fuzz. Deterministic: the ephemeral key and nonce are fixed, which only a test
may do. Run from the repository root: /usr/bin/python3 sync/testdata/sealed/make_seeds.py
"""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HERE = "sync/testdata/sealed"
SEEDS = "sync/testdata/fuzz_sealed"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw

with open(f"{HERE}/test_hub_export.key", "rb") as f:
    hub = serialization.load_pem_private_key(f.read(), password=None)
hub_pub = hub.public_key().public_bytes(*RAW)


def seal(plaintext, seed_byte):
    eph = X25519PrivateKey.from_private_bytes(bytes([seed_byte]) * 32)
    eph_pub = eph.public_key().public_bytes(*RAW)
    shared = eph.exchange(hub.public_key())
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"outpost export v1" + eph_pub + hub_pub).derive(shared)
    nonce = bytes([seed_byte ^ 0x5A]) * 12
    header = (b"OPSE" + struct.pack("<BBH", 1, 0, 0) + hashlib.sha256(hub_pub).digest() +
              eph_pub + nonce + struct.pack("<Q", len(plaintext)))
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


known = seal(b"a sealed export, opened by the C++ reader", 7)
write(f"{HERE}/known_answer.opse", known)
with open("sync/testdata/fuzz_export/one_batch.bin", "rb") as f:
    export = f.read()
write(f"{SEEDS}/one_batch.opse", seal(export, 9))
write(f"{SEEDS}/known_answer.opse", known)
write(f"{SEEDS}/empty.opse", seal(b"", 11))
write(f"{SEEDS}/header_only.opse", known[:92])
