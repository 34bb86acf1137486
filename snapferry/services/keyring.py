"""KMS keys as the other services use them: find a key by any of its names, decide whether a
principal may use it, encrypt with it, and keep each encrypted lineage's data key."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from snapferry.domain import envelope
from snapferry.domain import keys as rules
from snapferry.domain.accounts import Principal
from snapferry.domain.clock import Clock
from snapferry.domain.envelope import BlockCipher, BlockCodec, PlainBlocks
from snapferry.domain.keys import Key
from snapferry.domain.policy import ResourcePolicy, key_policy, policy_allows
from snapferry.errors import ServiceError
from snapferry.storage import keys as store
from snapferry.storage.secrets import SecretBox


def via_service(region: str) -> str:
    """kms:ViaService when EC2 and the EBS direct APIs use a key (AWS names EC2 for both)."""
    return f"ec2.{region}.amazonaws.com"


def _bound(key_id: str) -> bytes:
    return f"kms-key:{key_id}".encode()


# Lineages whose cipher (unwrapped data key, AES-GCM key schedule) or plainness is kept in
# memory. Bounded: a store of 100,000 snapshots must not keep 100,000 data keys; past the
# bound the least recently used is dropped and unwrapped again when next used.
CACHED_LINEAGES = 1024


class _Recent:
    """A bounded least-recently-used map, safe across threads. Keyed by lineage id: a
    lineage's data key (and whether it has one) is fixed when the lineage is made, so an
    entry never goes stale; what may change (the KMS key's state, the caller's permission)
    is checked on every use, outside this cache."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> object | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: str, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.bound:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


_PLAIN = object()  # the cache's mark of an unencrypted lineage


class KeyRing:
    def __init__(self, box: SecretBox, clock: Clock) -> None:
        self.box = box
        self.clock = clock
        # Lineage id -> its BlockCipher (memory only), or _PLAIN for a lineage known to be
        # unencrypted: a lineage's key is written with the lineage, so one found without a
        # key never gains one.
        self._lineages = _Recent(CACHED_LINEAGES)

    # ---- finding keys ---------------------------------------------------------------------

    def new_key(self, conn: Connection, account_id: str, region: str, description: str,
                policy: str, manager: str = rules.CUSTOMER) -> Key:
        key_id = str(uuid.uuid4())
        key = Key(key_id=key_id, account_id=account_id, region=region,
                  description=description, state=rules.ENABLED, key_manager=manager,
                  creation_date=self.clock.now(), policy=policy,
                  material_sealed=self.box.seal(envelope.new_material(), _bound(key_id)))
        store.insert_key(conn, key)
        return key

    def managed_ebs_key(self, conn: Connection, account_id: str, region: str) -> Key:
        """The account's AWS managed key for EBS in this region, made on first use."""
        key_id = store.alias_target(conn, account_id, region, rules.EBS_ALIAS)
        if key_id is not None:
            key = store.get_key(conn, key_id)
            assert key is not None
            return key
        try:
            with conn.begin_nested():
                key = self.new_key(conn, account_id, region, "Default key that protects my EBS "
                                   "volumes when no other key is defined",
                                   rules.managed_policy(account_id), rules.AWS)
                store.put_alias(conn, account_id, region, rules.EBS_ALIAS, key.key_id,
                                self.clock.now(), create=True)
        except IntegrityError:  # a concurrent first use (two copies of one image) made it
            key_id = store.alias_target(conn, account_id, region, rules.EBS_ALIAS)
            found = store.get_key(conn, key_id) if key_id else None
            if found is None:
                raise
            return found
        return key

    def resolve(self, conn: Connection, text: str, account_id: str, region: str,
                aliases: bool = True) -> Key:
        """The key `text` names for a caller of `account_id` in `region`."""
        ref = rules.parse_key_ref(text, account_id, region, aliases)
        if ref.kind == "alias":
            if ref.value == rules.EBS_ALIAS and ref.account_id == account_id:
                return self.managed_ebs_key(conn, account_id, region)
            key_id = store.alias_target(conn, ref.account_id, region, ref.value)
            if key_id is None:
                raise rules.alias_not_found(rules.alias_arn(region, ref.account_id, ref.value))
        else:
            key_id = ref.value
        key = store.get_key(conn, key_id)
        if key is None or key.account_id != ref.account_id or key.region != region:
            raise rules.key_not_found(rules.key_arn(region, ref.account_id, key_id))
        return key

    def ebs_default_key(self, conn: Connection, account_id: str, region: str) -> Key:
        """The key new encrypted volumes and snapshots get when none is named: the one set
        with ModifyEbsDefaultKmsKeyId, else the AWS managed key."""
        _, chosen = store.ebs_encryption(conn, account_id, region)
        if chosen is None:
            return self.managed_ebs_key(conn, account_id, region)
        return self.resolve(conn, chosen, account_id, region)

    def usable_for_ebs(self, conn: Connection, principal: Principal, key: Key) -> Key:
        """Check that EBS may encrypt new data under `key` for `principal`."""
        rules.check_usable(key)
        for operation in ("DescribeKey", "GenerateDataKeyWithoutPlaintext", "Decrypt"):
            if not self.may(conn, principal, key, operation, via_ec2=True):
                raise ServiceError("AccessDeniedException",
                                   f"{principal.arn} may not use {key.arn} ({operation}).")
        return key

    # ---- using keys -----------------------------------------------------------------------

    def policy(self, conn: Connection, key: Key) -> ResourcePolicy:
        return key_policy(key.account_id, key.policy, store.grants_of(conn, key.key_id))

    def may(self, conn: Connection, principal: Principal, key: Key, operation: str,
            encryption_context: Mapping[str, str] | None = None, via_ec2: bool = False
            ) -> bool:
        """Whether `principal` may use `key` for `operation`: its key policy and grants,
        with the principal's own policies. `via_ec2`: EC2/EBS uses the key on the
        principal's behalf (kms:ViaService is ec2.REGION.amazonaws.com)."""
        action = f"kms:{operation}"
        via = via_service(key.region) if via_ec2 else None
        if policy_allows(key_policy(key.account_id, key.policy), principal, action,
                         encryption_context, key.arn, via):
            return True  # the policy alone allows: no need to read the grants
        return policy_allows(self.policy(conn, key), principal, action, encryption_context,
                             key.arn, via)

    def material(self, key: Key) -> bytes:
        return self.box.open(key.material_sealed, _bound(key.key_id))

    def encrypt(self, key: Key, plaintext: bytes, context: Mapping[str, str] | None) -> bytes:
        rules.check_usable(key)
        return envelope.encrypt(self.material(key), key.key_id, plaintext, context)

    def decrypt(self, key: Key, blob: bytes, context: Mapping[str, str] | None) -> bytes:
        rules.check_usable(key)
        return envelope.decrypt(self.material(key), blob, context)

    # ---- lineage data keys ----------------------------------------------------------------

    def new_lineage(self, conn: Connection, key: Key) -> tuple[str, BlockCipher]:
        """A new encrypted lineage under `key`: a fresh data key, stored only wrapped."""
        lineage_id = str(uuid.uuid4())
        data_key = envelope.new_material()
        wrapped = self.encrypt(key, data_key, {"lineage": lineage_id})
        store.insert_lineage_key(conn, lineage_id, key.arn, wrapped)
        cipher = BlockCipher(lineage_id, data_key)
        self._lineages.put(lineage_id, cipher)
        return lineage_id, cipher

    def codec(self, conn: Connection, lineage_id: str, region: str,
              key: Key | None = None) -> BlockCodec:
        """How a lineage's blocks are stored: its cipher when encrypted (refused when its KMS
        key cannot be used: disabled, pending deletion), else plain blocks of the region.
        `key`, when the caller has just loaded the lineage's key, saves looking it up again:
        the key's state is checked on every call, the data key unwrapped once."""
        cached = self._lineages.get(lineage_id)
        if cached is _PLAIN:
            return PlainBlocks(region, lineage_id)
        if isinstance(cached, BlockCipher) and key is not None:
            rules.check_usable(key)
            return cached
        found = store.lineage_key(conn, lineage_id)
        if found is None:
            self._lineages.put(lineage_id, _PLAIN)
            return PlainBlocks(region, lineage_id)
        key_arn, wrapped = found
        key = store.get_key(conn, key_arn.rsplit("/", 1)[1])
        if key is None:
            raise ServiceError("KMSInvalidStateException", f"The KMS key {key_arn} is gone.")
        rules.check_usable(key)
        if isinstance(cached, BlockCipher):
            return cached
        cipher = BlockCipher(lineage_id, self.decrypt(key, wrapped, {"lineage": lineage_id}))
        self._lineages.put(lineage_id, cipher)
        return cipher
