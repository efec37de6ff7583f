"""Fixed Japanese instructions for the RAGAS judge prompts (``--ja-prompts fixed``, and the
fallback when adapting a prompt with the judge fails).

Keys are ``<metric>.<prompt attribute>``; the values replace the prompt's English
``instruction``. The examples stay as RAGAS ships them; the output format and JSON keys do
not change, only the language the judge is asked to write its statements in."""

from __future__ import annotations

LANGUAGE_RULE = (
    "入力は日本語です。"
    "出力に含める文（statement、reason、question、claim など）は必ず日本語で書いてください。"
)

INSTRUCTIONS: dict[str, str] = {
    "faithfulness.statement_generator_prompt": (
        "質問と回答が与えられます。回答の各文を分析し、それぞれを一つ以上の、単独で意味の通る文（ステートメント）に分解してください。"
        "ステートメントには代名詞を使わないでください。"
    ),
    "faithfulness.nli_statement_prompt": (
        "与えられたコンテキストに基づいて、一連のステートメントの忠実性を判定してください。"
        "各ステートメントについて、コンテキストから直接導けるなら verdict を 1、直接導けないなら 0 としてください。"
    ),
    "answer_relevancy.prompt": (
        "与えられた回答に対応する質問を一つ生成し、回答が曖昧・回避的かどうかを判定してください。"
        "回答が曖昧・回避的（「わかりません」「資料に記載がありません」「場合によります」など）なら noncommittal を 1、"
        "具体的な内容を述べていれば 0 としてください。"
    ),
    "context_precision.prompt": (
        "質問、コンテキスト、回答が与えられます。コンテキストが回答を導くのに役立ったかどうかを判定し、"
        "役立ったなら verdict を 1、役立たなかったなら 0 として、理由を添えてください。"
    ),
    "context_recall.prompt": (
        "コンテキストと回答が与えられます。"
        "回答の各ステートメントを分析し、それがコンテキストに帰属できるかどうかを分類してください。"
        "二値分類のみを使い、コンテキストに帰属できるなら attributed を 1、できないなら 0 とし、"
        "各分類の理由を詳しく書いてください。"
    ),
    "factual_correctness.prompt": (
        "入力された各文を、一つ以上の独立したステートメントに分解してください。各ステートメントは単独で検証できる主張にしてください。"
        "例に示された粒度（atomicity）と網羅性（coverage）に従ってください。"
    ),
    "factual_correctness.nli_prompt": (
        "与えられたコンテキストに基づいて、一連のステートメントの忠実性を判定してください。"
        "各ステートメントについて、コンテキストから直接導けるなら verdict を 1、直接導けないなら 0 としてください。"
    ),
}


def fixed_instruction(key: str) -> str:
    return f"{INSTRUCTIONS[key]}\n{LANGUAGE_RULE}"
