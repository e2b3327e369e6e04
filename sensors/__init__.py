"""Dagster sensors of poster-pipeline (webhook-queue drain, account discovery, alerts).

They import from ``poster_pipeline``; only ``poster_pipeline.definitions`` imports them back.
"""
