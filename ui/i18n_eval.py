"""The evaluation page's data in Japanese and English: why a question scored what it did (the score reasons' keys,
``reason_<key>``, matched from a stored reason by eval/reasons.py), and a run comparison's columns and kinds of
change. ui/i18n.py merges them."""

from __future__ import annotations

_REFUSALS = {
    "no_relevant_passage": ("関連する記載が見つからなかった", "no relevant passage was found"),
    "not_stated": ("資料に記載がないと判断した", "the passages do not state it"),
    "only_unsupported": ("生成した内容を資料で確認できなかった", "nothing the model wrote could be verified"),
    "noncommittal": ("明言しなかった", "the answer was noncommittal"),
}

COMPARE_STRINGS: dict[str, dict[str, str]] = {
    "eval_compare_col_metric": {"ja": "指標", "en": "Metric"},
    "eval_compare_col_a": {"ja": "比較対象", "en": "Earlier run"},
    "eval_compare_col_b": {"ja": "この実行", "en": "This run"},
    "eval_compare_col_delta": {"ja": "差", "en": "Change"},
    "eval_compare_col_failures_a": {"ja": "比較対象の失敗", "en": "Failed (earlier)"},
    "eval_compare_col_failures_b": {"ja": "この実行の失敗", "en": "Failed (this run)"},
    "eval_compare_col_id": {"ja": "ID", "en": "ID"},
    "eval_compare_col_question": {"ja": "質問", "en": "Question"},
    "eval_compare_col_change": {"ja": "変化", "en": "How"},
    "eval_change_worse": {"ja": "悪化", "en": "worse"},
    "eval_change_better": {"ja": "改善", "en": "better"},
    "eval_change_failed": {"ja": "失敗に", "en": "now failing"},
    "eval_change_recovered": {"ja": "失敗から回復", "en": "recovered"},
    "eval_draft_col_question": {"ja": "質問", "en": "Question"},
    "eval_draft_col_reference_answer": {"ja": "模範回答", "en": "Reference answer"},
    "eval_draft_col_source": {"ja": "ファイル", "en": "File"},
    "eval_draft_col_pages": {"ja": "ページ", "en": "Pages"},
}
"""The 評価 page's run comparison and test-question drafts: column names and the kinds of change."""

REASON_STRINGS: dict[str, dict[str, str]] = {
    **{f"reason_refusal_{code}": {"ja": f"回答を控えた（{ja}）", "en": f"refused ({en})"}
       for code, (ja, en) in _REFUSALS.items()},
    "reason_no_gold": {"ja": "正解の出典も参照文もない質問", "en": "no gold sources or reference passages"},
    "reason_cites_nothing": {"ja": "回答に出典がない", "en": "the answer cites nothing"},
    "reason_no_citations": {"ja": "回答を控えたか回答できない質問のため、出典なし",
                            "en": "refused or unanswerable: no citations"},
    "reason_answerable_refused": {"ja": "回答できる質問に回答を控えた", "en": "answerable, refused"},
    "reason_answerable_answered": {"ja": "回答できる質問に回答した", "en": "answerable, answered"},
    "reason_unanswerable_refused": {"ja": "回答できない質問に回答を控えた", "en": "unanswerable, refused"},
    "reason_unanswerable_answered": {"ja": "回答できない質問に回答した", "en": "unanswerable, answered"},
    "reason_unanswerable": {"ja": "回答できない質問", "en": "unanswerable question"},
    "reason_answerable": {"ja": "回答できる質問", "en": "answerable question"},
    "reason_answered": {"ja": "回答した", "en": "answered"},
    "reason_refused": {"ja": "回答を控えた", "en": "refused"},
    "reason_no_claims": {"ja": "回答を控えたため、確かめる主張がない", "en": "refused: no claims to check"},
    "reason_gold_cited": {"ja": "正解のページを検証済みの出典として引用", "en": "verified citation on a gold page"},
    "reason_gold_not_cited": {"ja": "正解のページの検証済み出典がない", "en": "no verified citation on a gold page"},
    "reason_no_contexts": {"ja": "検索された記載がない", "en": "no contexts"},
    "reason_no_contexts_retrieved": {"ja": "記載が一つも検索されなかった", "en": "no contexts retrieved"},
    "reason_no_reference": {"ja": "模範回答がない", "en": "no reference answer"},
    "reason_not_scored": {"ja": "採点されていない", "en": "not scored"},
    "reason_nan": {"ja": "採点結果が数値にならなかった（NaN）", "en": "the score is not a number (NaN)"},
    "reason_nan_detail": {"ja": "採点結果が数値にならなかった（NaN: {detail}）",
                          "en": "the score is not a number (NaN: {detail})"},
    "reason_answer_failed": {"ja": "回答の作成に失敗（{detail}）", "en": "answer failed ({detail})"},
    "reason_judge_no_verdicts": {"ja": "評価モデルが文ごとの判定を返さなかった",
                                 "en": "the judge returned no verdicts for the statements"},
    "reason_judge_prompt_too_long": {"ja": "評価モデルへの入力（{tokens} トークン）が文脈長 {context} トークンに"
                                           "収まらない",
                                     "en": "the judge's prompt of {tokens} tokens does not fit its {context}-token "
                                           "context"},
    "reason_judge_cancelled": {"ja": "評価を中止した", "en": "judging was cancelled"},
    "reason_judge_output_cut": {"ja": "評価モデルの出力が上限 {max} トークンで途切れた（{step}）",
                                "en": "the judge's output was cut at {max} tokens ({step})"},
    "reason_judge_output_invalid": {"ja": "評価モデルの出力が形式に合わない（{step}: {detail}）",
                                    "en": "the judge's output did not validate ({step}: {detail})"},
    "reason_judge_failed": {"ja": "評価モデルが失敗（{detail}）", "en": "the judge failed ({detail})"},
    "reason_metric_error": {"ja": "指標の計算でエラー（{error}: {detail}）",
                            "en": "the metric failed ({error}: {detail})"},
}
