"""Model cards: regenerating one from new measurements keeps its hand-written notes, and every
shipped card has a results table and the licence warning."""

from pathlib import Path

import pytest

from pose3d_tools.evaluation import LIFTER_CARD_DIR, card_notes


def test_card_notes_survive_regeneration(tmp_path: Path):
    card = tmp_path / "m.md"
    assert card_notes(card) == ""  # no card yet
    card.write_text("# m\n\n## Results\n| a |\n\n## Notes\n- measured by hand: 3 mm\n- second\n")
    assert card_notes(card) == "- measured by hand: 3 mm\n- second"
    card.write_text("# m\n\n## Results\n| a |\n")  # no notes section
    assert card_notes(card) == ""


@pytest.mark.parametrize("card", sorted(LIFTER_CARD_DIR.glob("*.md")), ids=lambda p: p.stem)
def test_shipped_cards_are_complete(card: Path):
    text = card.read_text()
    assert "non-commercial research only" in text
    assert "| input 2D |" in text and "| gt |" in text
    assert (LIFTER_CARD_DIR / f"{card.stem}.onnx").is_file()
