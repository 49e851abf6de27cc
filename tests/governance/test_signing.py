"""Signing model cards: keys, artifact digests, canonical JSON, signatures and verification."""

from __future__ import annotations

import json
import math
import re
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import shipyard.governance
from shipyard.errors import SigningError
from shipyard.governance import (
    CardSignature,
    artifact_digest,
    canonical_json,
    generate_keys,
    load_private_key,
    load_public_key,
    public_key_fingerprint,
    sign_card,
    verify_card,
)

CARD: dict[str, Any] = {
    "name": "churn",
    "version": "3",
    "metrics": {"auc": 0.8731, "f1": 0.61},
    "intended_use": "Rank customers by churn risk — not for pricing.",
    "tags": ["tabular", "sklearn"],
}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "home" / "keys" / "churn.pem", tmp_path / "repo" / "shipyard.pub"
    generate_keys(private, public)
    return private, public


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "data").mkdir(parents=True)
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "data" / "model.skops").write_bytes(bytes(range(256)) * 10)
    (folder / "requirements.txt").write_text("scikit-learn==1.5\n")
    return folder


def signed(keys: tuple[Path, Path], model: Path) -> CardSignature:
    return sign_card(CARD, artifact_digest(model), load_private_key(keys[0]))


def test_round_trip_verifies(keys: tuple[Path, Path], model: Path) -> None:
    signature = signed(keys, model)
    stored = json.loads(json.dumps(signature.to_dict()))
    card = json.loads(json.dumps(CARD, indent=2, sort_keys=True))  # as the card is stored

    result = verify_card(
        card,
        CardSignature.from_dict(stored),
        load_public_key(keys[1]),
        actual_artifact_digest=artifact_digest(model),
    )

    assert result.ok and result.problems == []
    assert signature.algorithm == "ed25519"
    assert signature.public_key_fingerprint == public_key_fingerprint(load_public_key(keys[1]))
    assert signature.signed_at.endswith("+00:00")


@pytest.mark.parametrize(
    "edit",
    [
        lambda card: card.update(version="4"),
        lambda card: card["metrics"].update(auc=0.8732),
        lambda card: card["tags"].append("extra"),
        lambda card: card.pop("intended_use"),
        lambda card: card.update(approved_by="mallory"),
    ],
    ids=["field", "nested-metric", "list", "removed", "added"],
)
def test_editing_the_card_fails(keys: tuple[Path, Path], model: Path, edit: Any) -> None:
    signature = signed(keys, model)
    card = json.loads(json.dumps(CARD))
    edit(card)

    result = verify_card(
        card, signature, load_public_key(keys[1]), actual_artifact_digest=artifact_digest(model)
    )

    assert not result.ok
    assert len(result.problems) == 1
    assert "does not match the card" in result.problems[0]
    assert "edited after signing" in result.problems[0]


def test_changing_one_byte_of_the_model_fails_and_shows_both_digests(
    keys: tuple[Path, Path], model: Path
) -> None:
    signature = signed(keys, model)
    weights = model / "data" / "model.skops"
    content = bytearray(weights.read_bytes())
    content[1000] ^= 1
    weights.write_bytes(bytes(content))
    modified = artifact_digest(model)

    result = verify_card(CARD, signature, load_public_key(keys[1]), actual_artifact_digest=modified)

    assert not result.ok
    assert result.problems == [
        "The model files were modified after signing: the stored artifact's digest is "
        f"{modified}, but {signature.artifact_digest} was signed."
    ]


def test_digest_covers_names_and_files_and_ignores_creation_order(
    tmp_path: Path, model: Path
) -> None:
    original = artifact_digest(model)
    assert original.startswith("sha256:") and len(original) == len("sha256:") + 64

    copy = tmp_path / "copy"
    (copy / "data").mkdir(parents=True)
    for name in ["requirements.txt", "data/model.skops", "MLmodel"]:
        (copy / name).write_bytes((model / name).read_bytes())
    assert artifact_digest(copy) == original

    (model / "extra.txt").write_text("")
    added = artifact_digest(model)
    assert added != original
    (model / "extra.txt").rename(model / "data" / "extra.txt")
    moved = artifact_digest(model)
    assert moved not in (original, added)
    (model / "data" / "extra.txt").unlink()
    assert artifact_digest(model) == original
    (model / "MLmodel").rename(model / "MLmodel.yaml")
    assert artifact_digest(model) != original


def test_digest_separates_file_boundaries(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, a, b in [(one, "xy", ""), (two, "x", "y")]:
        folder.mkdir()
        (folder / "a").write_text(a)
        (folder / "b").write_text(b)
    assert artifact_digest(one) != artifact_digest(two)


def test_digest_streams_files_larger_than_a_chunk(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "weights.bin").write_bytes(b"\0" * (3 * 1024 * 1024 + 7))
    before = artifact_digest(big)
    with (big / "weights.bin").open("r+b") as handle:
        handle.seek(-1, 2)
        handle.write(b"\1")
    assert artifact_digest(big) != before


def test_digest_refuses_symlinks_and_missing_folders(tmp_path: Path, model: Path) -> None:
    (model / "link").symlink_to(model / "MLmodel")
    with pytest.raises(SigningError, match="symbolic link"):
        artifact_digest(model)
    with pytest.raises(SigningError, match="not a folder"):
        artifact_digest(tmp_path / "absent")


def test_another_key_pair_fails_with_the_fingerprint_problem(
    tmp_path: Path, keys: tuple[Path, Path], model: Path
) -> None:
    signature = signed(keys, model)
    other_fingerprint = generate_keys(tmp_path / "other.pem", tmp_path / "other.pub")

    result = verify_card(
        CARD,
        signature,
        load_public_key(tmp_path / "other.pub"),
        actual_artifact_digest=artifact_digest(model),
    )

    assert not result.ok
    assert result.problems[0] == (
        f"The card was signed with another key ({signature.public_key_fingerprint}), "
        f"not the project's public key ({other_fingerprint})."
    )
    assert "does not match" in result.problems[1]


def test_every_problem_is_reported(keys: tuple[Path, Path], model: Path) -> None:
    signature = signed(keys, model)
    (model / "MLmodel").write_text("flavors: {tampered: true}\n")
    card = {**CARD, "version": "4"}

    result = verify_card(
        card,
        replace(signature, signature="not base64!"),
        load_public_key(keys[1]),
        actual_artifact_digest=artifact_digest(model),
    )

    assert not result.ok
    assert len(result.problems) == 3
    assert "not valid base64" in result.problems[0]
    assert "edited after signing" in result.problems[1]
    assert "model files were modified" in result.problems[2]


def test_an_edited_signature_record_fails(keys: tuple[Path, Path], model: Path) -> None:
    signature = signed(keys, model)
    forged = replace(signature, artifact_digest="sha256:" + "0" * 64)

    result = verify_card(
        CARD, forged, load_public_key(keys[1]), actual_artifact_digest=forged.artifact_digest
    )

    assert result.problems == [
        "The signature does not match the card: the signature record was edited after signing."
    ]


def test_key_files_have_private_modes(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_refuses_to_overwrite_a_private_key_unless_asked(keys: tuple[Path, Path]) -> None:
    private, public = keys
    before = public_key_fingerprint(load_public_key(public))

    with pytest.raises(SigningError) as raised:
        generate_keys(private, public)
    assert raised.value.hint is not None and "invalidates" in raised.value.hint
    assert public_key_fingerprint(load_private_key(private)) == before

    private.chmod(0o644)
    after = generate_keys(private, public, overwrite=True)
    assert after != before
    assert public_key_fingerprint(load_public_key(public)) == after
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


@pytest.mark.parametrize("load", [load_private_key, load_public_key])
def test_a_missing_key_file_says_how_to_create_it(tmp_path: Path, load: Any) -> None:
    with pytest.raises(SigningError) as raised:
        load(tmp_path / "absent.pem")
    assert raised.value.hint is not None and "shipyard keys init" in raised.value.hint


def test_a_key_file_with_the_wrong_content_is_named(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    for load, path in [
        (load_private_key, garbage),
        (load_public_key, garbage),
        (load_private_key, keys[1]),
        (load_public_key, keys[0]),
    ]:
        with pytest.raises(SigningError, match=str(path)):
            load(path)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_cannot_be_signed(
    keys: tuple[Path, Path], model: Path, bad: float
) -> None:
    with pytest.raises(SigningError, match="canonical JSON"):
        sign_card(
            {**CARD, "metrics": {"auc": bad}}, artifact_digest(model), load_private_key(keys[0])
        )


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": [1, 2.5], "a": {"é": "—"}}) == (
        '{"a":{"é":"—"},"b":[1,2.5]}'.encode()
    )
    assert canonical_json({"x": 0.1, "y": 1}) == canonical_json({"y": 1, "x": 0.1})
    with pytest.raises(SigningError):
        canonical_json({"when": object()})


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda record: None,
        lambda record: list(record.values()),
        lambda record: {"algorithm": "ed25519"},
        lambda record: {**record, "signature": 5},
        lambda record: {**record, "algorithm": "rsa"},
    ],
    ids=["null", "list", "incomplete", "non-text", "other-algorithm"],
)
def test_a_malformed_signature_record_is_refused(
    keys: tuple[Path, Path], model: Path, corrupt: Any
) -> None:
    with pytest.raises(SigningError):
        CardSignature.from_dict(corrupt(signed(keys, model).to_dict()))


def test_the_package_exports_signing() -> None:
    exported = shipyard.governance.__all__
    assert sorted(exported) == exported
    assert all(hasattr(shipyard.governance, name) for name in exported)


def test_the_docs_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = Path(__file__).parents[2] / "docs" / "signing.md"
    (example,) = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(page), "exec"), {})
    assert stat.S_IMODE((tmp_path / "keys" / "demo.pem").stat().st_mode) == 0o600
