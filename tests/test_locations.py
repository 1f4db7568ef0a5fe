"""bovw.locations: one spelling of a folder, and whether a path lies inside another."""

from __future__ import annotations

import os

from bovw.locations import location, within


def test_a_location_has_one_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert location("data/../data/x/") == f"{tmp_path}/data/x"
    assert location("file:data") == location(f"file://{tmp_path}/data") == f"{tmp_path}/data"
    assert location("s3a://bucket/runs/") == location("s3n://bucket/runs") == "s3://bucket/runs"
    assert location("hdfs://nn:8020/user/me/") == "hdfs://nn:8020/user/me"
    assert location("/") == "/"


def test_within_takes_any_spelling_and_links_but_not_a_name_that_begins_alike(tmp_path,
                                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos" / "Kiwi").mkdir(parents=True)
    os.symlink(tmp_path / "photos", tmp_path / "link")
    assert within("photos/Kiwi", str(tmp_path / "photos"))
    assert within(f"file:{tmp_path}/photos/", "photos")
    assert within("photos", "photos")
    assert within(str(tmp_path / "link" / "Kiwi"), "photos")
    assert within("photos/Kiwi", str(tmp_path / "link"))
    assert within("anything", "/")
    assert not within("photos-runs", "photos")
    assert not within("photos", "photos/Kiwi")
    assert within("s3a://bucket/runs/k8", "s3://bucket/runs/")
    assert not within("s3://bucket/runs2", "s3://bucket/runs")
    assert not within("s3://bucket/x", str(tmp_path))
