"""The cheap first test of secret masking, alone so that commands that only *show* statement texts (``at``,
``window``, ``locks``) can check a text without loading :mod:`plsnap.masking` and its tokenizers."""

from __future__ import annotations

import re

# The cheap test that every new statement text goes through (lowercased, see may_hold_secret()): a statement
# that does not match it is returned as is by mask_secrets(). Every rule of plsnap.masking needs one of these
# words in the raw text: passw, pwd, identif, secret, token, api_key, credential, private, auth, crypt, encode, decode,
# keyring, asymmetric, server, master, replica, slave, connection, option_list, ://, mysql, prepare,
# immediate, rds_, az_, create|alter user; inside a string that PREPARE or EXECUTE IMMEDIATE runs, a word
# can be spelled with escapes (``\I\D...``), hence ``\\[a-z]``. The alternatives are grouped by their
# first letter, which the regex engine matches faster than a flat list or re.IGNORECASE.
PRECHECK = re.compile(
    r"""
    a(?:uth|pi_?key|symmetric|lter\s+user|z_)|c(?:r(?:ypt|edential|eate\s+user)|onnection)|decode|encode
    |i(?:dentif|mmediate)|keyring|m(?:aster|ysql)|option_list|p(?:assw|wd|rivate|repare)|r(?:eplica|ds_)
    |s(?:ecret|erver|lave)|token|://|\\[a-z]
    """,
    re.X,
)


def may_hold_secret(text: str) -> bool:
    """Whether ``text`` holds a word that some secret-bearing statement needs: when False,
    :func:`plsnap.masking.mask_secrets` returns it as is."""
    return PRECHECK.search(text.lower()) is not None
