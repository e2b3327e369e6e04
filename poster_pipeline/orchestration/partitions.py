"""Partitions: one per connected Poster account, keyed by the account login."""

import dagster as dg

ACCOUNTS = "accounts"

accounts_partitions = dg.DynamicPartitionsDefinition(name=ACCOUNTS)
