"""The alert text: what a person reads in the e-mail and in the chat."""

from __future__ import annotations

from poster_pipeline.alerts.alert import MAX_ERROR_CHARS, Alert


def test_text_names_account_entity_error_run_and_tags():
    alert = Alert(
        subject="poster-pipeline: ingredients sync failed for account api-demo",
        account="api-demo",
        entities=("ingredients",),
        error="Poster answered 500",
        run_id="abc-123",
        link="http://dagster:3000/runs/abc-123",
        tags={"poster/sync": "full", "dagster/partition": "api-demo"},
    )
    text = alert.text()
    assert text.splitlines()[0] == alert.subject
    for expected in (
        "Account: api-demo",
        "Entity: ingredients",
        "Run: abc-123",
        "Tags: dagster/partition=api-demo, poster/sync=full",
        "Link: http://dagster:3000/runs/abc-123",
        "Poster answered 500",
    ):
        assert expected in text
    assert "not alerted" not in text


def test_suppressed_count_is_stated():
    alert = Alert("s", "a", ("x", "y"), "e", suppressed=3)
    assert "Entities: x, y" in alert.text()
    assert "3 more failures were not alerted" in alert.text()
    assert "1 more failure was not alerted" in Alert("s", "a", (), "e", suppressed=1).text()


def test_a_huge_error_is_cut():
    alert = Alert("s", None, (), "x" * (MAX_ERROR_CHARS + 500))
    assert "… (500 more characters)" in alert.text()
    assert len(alert.fields()["error"]) < MAX_ERROR_CHARS + 100
