"""The server's own record of each prediction, and each source's daily feedback allowance.

Feedback names a prediction by the id the API issued; what the feedback record says about
the review and the verdict comes from here, never from the visitor (contract/feedback.py).
In AWS the store is a DynamoDB table whose TTL attribute deletes a record after the
retention days; on a developer's machine it is an SQLite file, with the same behaviour. The
table holds two kinds of item (contract/feedback.py), so that each function's role can be
limited to its kind (stacks/prediction_records.py):

- ``prediction#<id>``: the record (JSON) and ``expires_at`` (epoch seconds)
- ``quota#<source>#<yyyy-mm-dd>``: ``n``, the feedback that source gave that UTC day
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol

import boto3
from botocore.config import Config

from contract.feedback import PREDICTION_KEY_PREFIX, QUOTA_KEY_PREFIX

from .settings import PredictionStoreSettings

# A quota item outlives its day by one, so a clock near midnight never reads a deleted count.
_QUOTA_LIFETIME_SECONDS = 2 * 86_400


def prediction_key(prediction_id: str) -> str:
    return f"{PREDICTION_KEY_PREFIX}{prediction_id}"


def quota_key(source: str, now: datetime) -> str:
    return f"{QUOTA_KEY_PREFIX}{source}#{now.astimezone(UTC):%Y-%m-%d}"


class PredictionStore(Protocol):
    def put(self, record: dict[str, Any], expires_at: int) -> None: ...

    def get(self, prediction_id: str, now: float) -> dict[str, Any] | None: ...

    def take_allowance(self, source: str, now: datetime, limit: int) -> bool: ...


class DynamoDbPredictionStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def put(self, record: dict[str, Any], expires_at: int) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": prediction_key(record["prediction_id"])},
                "record": {"S": json.dumps(record, ensure_ascii=False)},
                "expires_at": {"N": str(expires_at)},
            },
        )

    def get(self, prediction_id: str, now: float) -> dict[str, Any] | None:
        """The record, or None if there is none or it has expired (DynamoDB deletes expired
        items some time after they expire, not at once)."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": prediction_key(prediction_id)}},
            # Feedback can follow the verdict within a second.
            ConsistentRead=True,
        ).get("Item")
        if item is None or float(item["expires_at"]["N"]) <= now:
            return None
        return json.loads(item["record"]["S"])

    def take_allowance(self, source: str, now: datetime, limit: int) -> bool:
        """Count one more feedback for ``source`` today; False, counting nothing, at ``limit``."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": quota_key(source, now)}},
                UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :expires)",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expires": {"N": str(int(now.timestamp()) + _QUOTA_LIFETIME_SECONDS)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


class SqlitePredictionStore:
    """The same store in one SQLite file, for the local stack's many handler threads: one
    connection per thread, and expired items deleted once a minute, as DynamoDB's TTL deletes
    them in its own time."""

    PRUNE_SECONDS = 60.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._pruned = 0.0
        connection = self._connection()
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS items "
            "(pk TEXT PRIMARY KEY, record TEXT, n INTEGER, expires_at REAL NOT NULL)"
        )
        connection.execute("CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at)")

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            # Autocommit: each statement is its own transaction unless BEGIN says otherwise.
            connection = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            # With WAL, NORMAL survives a crash of the process, not of the machine: enough
            # for a developer's store, and no fsync on the request path.
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    def put(self, record: dict[str, Any], expires_at: int) -> None:
        connection = self._connection()
        connection.execute(
            "INSERT OR REPLACE INTO items (pk, record, expires_at) VALUES (?, ?, ?)",
            (prediction_key(record["prediction_id"]), json.dumps(record), expires_at),
        )
        now = time.time()
        if now - self._pruned >= self.PRUNE_SECONDS:
            self._pruned = now
            connection.execute("DELETE FROM items WHERE expires_at <= ?", (now,))

    def get(self, prediction_id: str, now: float) -> dict[str, Any] | None:
        row = (
            self._connection()
            .execute(
                "SELECT record FROM items WHERE pk = ? AND expires_at > ?",
                (prediction_key(prediction_id), now),
            )
            .fetchone()
        )
        return None if row is None else json.loads(row[0])

    def take_allowance(self, source: str, now: datetime, limit: int) -> bool:
        key = quota_key(source, now)
        expires = now.timestamp() + _QUOTA_LIFETIME_SECONDS
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute("SELECT n FROM items WHERE pk = ?", (key,)).fetchone()
            if row is not None and row[0] >= limit:
                return False
            connection.execute(
                "INSERT INTO items (pk, n, expires_at) VALUES (?, 1, ?) "
                "ON CONFLICT(pk) DO UPDATE SET n = n + 1",
                (key, expires),
            )
            return True
        finally:
            connection.execute("COMMIT")


_stores: dict[PredictionStoreSettings, PredictionStore] = {}
_lock = threading.Lock()


def prediction_store(settings: PredictionStoreSettings) -> PredictionStore:
    """The container's store for ``settings``, made on first use."""
    with _lock:
        if settings not in _stores:
            if settings.table:
                client = boto3.client(
                    "dynamodb",
                    # The answer waits on it: short tries, and a slow store costs the record.
                    config=Config(
                        connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 2}
                    ),
                )
                _stores[settings] = DynamoDbPredictionStore(client, settings.table)
            else:
                _stores[settings] = SqlitePredictionStore(settings.database)
        return _stores[settings]
