"""Why a score is what it is, as a message key: a stored run keeps each score's reason as the English text the
metric or the judge wrote (eval/metrics.py, eval/runner.py, eval/judge.py); :func:`reason_message` matches it to
a key and its parameters, so the app says it in the user's language (ui/i18n_eval.py, keys ``reason_<key>``)."""

from __future__ import annotations

import re
from typing import get_args

from core.schema import RefusalReason

_REFUSALS = "|".join([*get_args(RefusalReason), "noncommittal"])

# (pattern matched against the whole reason, key); the first match wins, so the specific come before the general
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.DOTALL), key)
    for p, key in [
        (r"no gold sources or reference passages", "no_gold"),
        (r"answer cites nothing", "cites_nothing"),
        (r"refused or unanswerable, no citations", "no_citations"),
        (r"(?P<case>answerable|unanswerable), (?P<outcome>refused|answered)", "{case}_{outcome}"),
        (r"unanswerable( question)?", "unanswerable"),
        (r"answerable", "answerable"),
        (r"answered", "answered"),
        (r"refused", "refused"),
        (rf"refused \((?P<why>{_REFUSALS})\)", "refusal_{why}"),
        (rf"(?P<why>{_REFUSALS})", "refusal_{why}"),
        (r"refused: no claims to check", "no_claims"),
        (r"verified citation on a gold page", "gold_cited"),
        (r"no verified citation on a gold page", "gold_not_cited"),
        (r"no contexts", "no_contexts"),
        (r"no contexts retrieved", "no_contexts_retrieved"),
        (r"no reference answer", "no_reference"),
        (r"not scored", "not_scored"),
        (r"NaN", "nan"),
        (r"NaN: (?P<detail>.*)", "nan_detail"),
        (r"answer failed: (?P<detail>.*)", "answer_failed"),
        (r"judge: returned no verdicts for the statements", "judge_no_verdicts"),
        (r"judge: prompt of (?P<tokens>\d+) tokens does not fit the judge's (?P<context>\d+)-token context",
         "judge_prompt_too_long"),
        (r"judge: cancelled", "judge_cancelled"),
        (r"judge: (?P<step>\w+): output cut at max_tokens=(?P<max>\d+)", "judge_output_cut"),
        (r"judge: (?P<step>\w+): output did not validate \((?P<detail>.*)\)", "judge_output_invalid"),
        (r"judge: (?P<detail>.*)", "judge_failed"),
        (r"(?P<error>\w+): (?P<detail>.*)", "metric_error"),
    ]
]


def reason_message(reason: str | None) -> tuple[str, dict[str, str]] | None:
    """The message key (without its ``reason_`` prefix) and parameters of a stored score reason; None for no
    reason, or one this build does not know (shown as it is)."""
    if not reason:
        return None
    for pattern, key in _PATTERNS:
        match = pattern.fullmatch(reason.strip())
        if match:
            params = {k: v or "" for k, v in match.groupdict().items()}
            return key.format(**params), {k: v for k, v in params.items() if f"{{{k}}}" not in key}
    return None
