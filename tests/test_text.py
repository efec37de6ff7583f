"""core.text: the one sentence splitter, language detection and the Japanese character ranges."""

import pytest

from core.text import KANA_RE, detect_language, display_width, is_cjk, sentence_spans, split_sentences


def test_a_japanese_full_stop_inside_brackets_does_not_end_the_sentence():
    text = "子会社（第二条に規定する子会社をいう。以下同じ。）を届け出る。次の文。"
    assert split_sentences(text) == ["子会社（第二条に規定する子会社をいう。以下同じ。）を届け出る。", "次の文。"]


def test_closing_quotes_belong_to_the_sentence_they_end():
    assert split_sentences('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]
    assert split_sentences("「本人確認を行う。」と定める。") == ["「本人確認を行う。」と定める。"]


@pytest.mark.parametrize("text,expected", [
    ("See e.g. Article 5 of the Act. It applies.", ["See e.g. Article 5 of the Act.", "It applies."]),
    ("The U.S. Treasury issued it. Banks comply.", ["The U.S. Treasury issued it.", "Banks comply."]),
    ("Keep records for 5 years. 10 days apply.", ["Keep records for 5 years.", "10 days apply."]),
    ("It is 3.5 percent. lower case follows.", ["It is 3.5 percent. lower case follows."]),
    ("Is it required? Yes! It is.", ["Is it required?", "Yes!", "It is."]),
])  # fmt: skip
def test_english_sentence_ends(text, expected):
    assert split_sentences(text) == expected


def test_a_line_break_ends_a_sentence():
    assert split_sentences("- first item\n- second item [1]\n\nLast one.") == [
        "- first item", "- second item [1]", "Last one."
    ]


def test_offsets_point_into_the_text_without_leading_spaces():
    text = "一文目。　二文目！\n Third one. Fourth"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["一文目。", "二文目！", "Third one.", "Fourth"]


def test_empty_and_blank_text_have_no_sentences():
    assert sentence_spans("") == [] and split_sentences(" \n\u3000\n") == []


def test_language_is_japanese_only_with_kana_or_kanji():
    assert detect_language("口座開設") == "ja" and detect_language("ｱｶｳﾝﾄ") == "ja"
    assert detect_language("（１２３）ＡＢＣ") == "en"  # full-width digits and brackets are not Japanese
    assert KANA_RE.search("カナ") and not KANA_RE.search("漢字")


def test_full_width_characters_take_two_columns():
    assert display_width("ab") == 2 and display_width("第1条") == 5
    assert is_cjk("、") and is_cjk("Ａ") and not is_cjk("A") and not is_cjk("")


def test_in_brackets_also_ends_the_clauses_inside_brackets():
    text = "子会社（第二条に規定する子会社をいう。以下同じ。）を届け出る。"
    assert split_sentences(text, in_brackets=True) == [
        "子会社（第二条に規定する子会社をいう。", "以下同じ。）", "を届け出る。"]
