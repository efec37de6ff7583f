"""Enforced grounding: only claims a cited source supports are an answer. Every claim type the verifier
checks (numbers, amounts, periods, percentages, articles, named bodies, negation) and every refusal reason."""

from __future__ import annotations

import pytest

from core.schema import Hit
from qa.claims import asked_specific, canonical, missing_specifics, negated, specifics, states_asked_specific
from qa.grounding import enforce_grounding

REFUSAL = "提供された資料には、この質問に答える記載がありません。"


def hit(n: int, text: str, title: str = "ガイドライン", section: str = "") -> Hit:
    return Hit(doc_id=f"d{n}", source=f"doc{n}.pdf", title=title, page=n, pages=[n], section=section, text=text,
               score=1.0, chunk_id=f"d{n}:1:0")


GUIDE = hit(1, "疑わしい取引に該当すると判断した場合には、疑わしい取引の届出を直ちに行う態勢を構築すること。"
               "確認記録は、取引が行われた日から七年間保存しなければならない。")
LAW = hit(2, "特定事業者は、当該取引の金額が二百万円を超えるものについて、取引時確認を行わなければならない。",
          title="犯罪による収益の移転防止に関する法律", section="第二章 > 第四条（取引時確認等）")
FATF = hit(3, "Financial institutions should be required to maintain all necessary records on transactions "
              "for at least five years. The FATF recommends that 10 percent of staff are trained.", title="FATF")


@pytest.mark.parametrize("sentence,passage", [
    ("確認記録は7年間保存します。", "確認記録は、七年間保存しなければならない。"),  # kanji numerals
    ("２００万円を超える取引が対象です。", "金額が二百万円を超えるもの"),  # full width, 万
    ("Records are kept for 5 years.", "records for at least five years"),  # number words
    ("Transfers above EUR 1,000 need the payer's name.", "exceeding EUR 1 000, the payer's name"),  # separators
    ("10%の職員", "10 percent of staff"),  # percent
    ("第十条第２項に定める", "第10条第2項の規定により"),  # articles
    ("The Bank Secrecy Act requires a SAR.", "Under the BSA, banks file a SAR."),  # a law by its initials
    ("Under the Money Laundering Regulations, records are kept.", "the Money Laundering Regulation keeps records"),
    ("An example is owning more than 25%.", "e.g. any person owning more than a certain percentage (e.g. 25%)"),
])
def test_the_same_specific_spelled_differently_is_found(sentence, passage):
    assert specifics(sentence) and not missing_specifics(sentence, passage), canonical(sentence)


@pytest.mark.parametrize("sentence,passage,kind", [
    ("取引終了後1年間保存します。", "取引が行われた日から七年間保存する。", "number"),  # period
    ("300万円を超える取引が対象です。", "金額が二百万円を超えるもの", "number"),  # amount
    ("Report within 10 hours.", "Report promptly to the FIU.", "number"),  # bare number
    ("第五条に定める", "第四条の規定により", "article"),  # article
    ("金融庁が定める", "財務省が定める", "name"),  # body
    ("The IMF requires this.", "The FATF requires this.", "name"),
    ("第３線の監査は年3回しか開催されていない", "取締役会は年3回しか開催されておらず", "ordinal"),  # whose 3 times
    ("確認記録は5年間保存します。", "確認記録は十五年間保存する。", "number"),  # inside a longer number
    ("Recommendation 6 refers to resolution 1718.", "resolution 1718 (2006)", "number"),  # 6 is not 2006's
    ("The limit is 6 percent.", "The limit is 6.5 percent.", "number"),
    ("財務大臣は管財人を選任する。", "内閣総理大臣は管財人を選任する。", "name"),  # a minister is a body
    ("特別保険料は日本銀行に納付する。", "特別保険料は預金保険機構に納付する。", "name"),
])
def test_a_specific_the_passage_does_not_state_is_missing(sentence, passage, kind):
    assert [s.kind for s in missing_specifics(sentence, passage)] == [kind]


def test_negation_is_compared_and_obligations_are_not_negations():
    assert negated("保存する必要はありません。") and negated("need not be kept")
    assert not negated("保存しなければならない。") and not negated("must be kept")
    # a refusal is a denial: "should refuse to continue" does not support "can continue"
    assert negated("Correspondent banks should refuse to enter into a relationship with a shell bank.")
    assert negated("取引を謝絶する。") and not negated("Banks refer the case to the FIU.")
    # spoken obligations, as staff ask and the model echoes (「何年間保存しないといけないですか？」), are obligations
    for must in ("保存しないといけないです。", "保存しなければいけません。", "保存しなくてはいけない。",
                 "保存しなきゃいけない。"):
        assert not negated(must), must
    assert negated("保存しなくてもよい。") and negated("保存しなくていい。")  # "need not"
    # bounds are limits, not denials: FATF's "(no higher than USD/EUR 1,000)" read as a "no"
    assert not negated("Countries may adopt a de minimis threshold (no higher than USD/EUR 1,000).")
    assert not negated("not later than 30 days") and not negated("百万円を超えない取引")
    assert negated("There is no de minimis threshold.")


def test_a_spoken_obligation_is_supported_by_the_statute_that_imposes_it():
    """The 0.5B answered 「確認記録は、七年間保存しないといけないです。」 from 「…七年間保存しなければならない。」
    and the verifier removed it: しないといけない read as a denial."""
    law = hit(1, "特定事業者は、確認記録を、特定取引等に係る契約が終了した日から、七年間保存しなければならない。")
    grounded = enforce_grounding("取引時確認の確認記録は、七年間保存しないといけないです[1]。", [law], REFUSAL,
                                 "取引時確認の確認記録って、何年間保存しないといけないですか？")
    assert grounded.refusal_reason is None and grounded.citations


def test_unsupported_sentences_are_removed_and_listed_apart():
    text = "確認記録は7年間保存します[1]。保存期間の延長には10日前の申請が必要です[1]。"
    grounded = enforce_grounding(text, [GUIDE], REFUSAL)
    assert grounded.refusal_reason is None
    assert grounded.text == "確認記録は7年間保存します[1]。"
    assert grounded.removed == ["保存期間の延長には10日前の申請が必要です。"]
    assert [c.n for c in grounded.citations] == [1]


def test_a_bare_number_is_a_claim_and_alone_it_is_a_refusal():
    """The issue's example: asked within how many hours an STR is due, the model answered "10"."""
    grounded = enforce_grounding("10", [FATF], REFUSAL)
    assert grounded.refusal_reason == "only_unsupported" and grounded.text == REFUSAL
    assert grounded.removed == ["10"] and not grounded.citations


def test_a_short_answer_is_checked_as_the_answer_to_the_question():
    """"Five years" answers the question only where one source sentence holds both the question's words and
    the period; a number that stands elsewhere in the retrieved passage is not an answer."""
    asked = "For how many years should financial institutions maintain records on transactions?"
    grounded = enforce_grounding("Five years.", [FATF], REFUSAL, asked)
    assert grounded.refusal_reason is None and grounded.citations[0].doc_id == "d3"
    assert "five years" in grounded.citations[0].quote
    for wrong in ("Ten years.", "10"):  # "10" is in the passage, in another sentence
        assert enforce_grounding(wrong, [FATF], REFUSAL, asked).refusal_reason == "only_unsupported"
    assert enforce_grounding("Yes.", [FATF], REFUSAL, asked).refusal_reason == "only_unsupported"


def test_an_invented_retention_period_is_not_an_answer():
    grounded = enforce_grounding("取引終了後1年間保存しなければなりません。", [GUIDE, LAW], REFUSAL)
    assert grounded.refusal_reason == "only_unsupported"


def test_a_law_the_claim_names_must_be_named_by_its_source():
    """The 1.5B with eight passages answered what Japan's law requires from the UK's JMLSG guidance (it is seven
    years, not five): the words of an English law's name, or its initials, must stand in the cited sentence or its
    document's title and section."""
    jmlsg = hit(5, "Records must be kept for five years from the date the business relationship ends.",
                title="Prevention of money laundering/ combating terrorist financing", section="8 Record keeping")
    claim = ("Under Japan's Act on Prevention of Transfer of Criminal Proceeds, verification records must be retained "
             "for five years [1].")
    assert [s.kind for s in missing_specifics(claim, jmlsg.text)] == ["law"]
    assert enforce_grounding(claim, [jmlsg], REFUSAL).refusal_reason == "only_unsupported"
    assert enforce_grounding("Records must be kept for five years from the date the business relationship ends [1].",
                             [jmlsg], REFUSAL).refusal_reason is None


def test_a_number_inside_another_number_is_not_stated():
    """The 1.5B answered which resolutions FATF Recommendation 6 names with the list of Recommendation 7's footnote,
    and "6" was found in "1718 (2006)": a number is stated only as a number of its own."""
    footnote = hit(4, "Recommendation 7 is applicable to all current Security Council resolutions. At the time of "
                      "issuance of this Recommendation, (February 2012), the Security Council resolutions applying "
                      "targeted financial sanctions relating to the financing of proliferation of weapons of mass "
                      "destruction are: resolutions 1718 (2006), 1737 (2006), 1747 (2007), 1803 (2008), 1874 (2009), "
                      "and 1929 (2010).", title="THE FATF RECOMMENDATIONS")
    claim = ("The FATF Recommendation 6 refers to Security Council resolutions 1718 (2006), 1737 (2006), 1747 (2007), "
             "1803 (2008), 1874 (2009), and 1929 (2010) for terrorist-financing sanctions [1].")
    assert enforce_grounding(claim, [footnote], REFUSAL).refusal_reason == "only_unsupported"
    seven = claim.replace("Recommendation 6", "Recommendation 7").replace("terrorist-financing", "proliferation")
    assert enforce_grounding(seven, [footnote], REFUSAL).refusal_reason is None


def test_a_specific_the_passage_states_about_something_else_does_not_support_a_claim():
    """The claim's words and its specifics must stand in one sentence (or two neighbouring ones) of the source:
    the guideline says 七年間 of 確認記録 and 十日 of something else, two sentences away."""
    far = hit(4, "確認記録は、取引が行われた日から七年間保存しなければならない。研修は年に一回実施する。"
                 "本人確認書類の写しは、受付後十日以内に本部へ送付する。")
    assert enforce_grounding("確認記録は7年間保存しなければならない[1]。", [far], REFUSAL).refusal_reason is None
    wrong = enforce_grounding("確認記録は10日間保存しなければならない[1]。", [far], REFUSAL)
    assert wrong.refusal_reason == "only_unsupported" and wrong.removed == ["確認記録は10日間保存しなければならない。"]


def test_a_rule_for_one_sector_does_not_support_a_claim_about_another():
    """The 0.5B answered "And for casinos?" with FATF's threshold for occasional transactions (casinos: 3,000)."""
    fatf = hit(3, "22. The designated threshold for occasional transactions under Recommendation 10 is USD/EUR 15,000. "
                  "Financial transactions above the designated threshold include linked operations.",
               title="THE FATF RECOMMENDATIONS")
    casino = "The threshold for casinos under Recommendation 10 is USD/EUR 15,000 [1]."
    assert enforce_grounding(casino, [fatf], REFUSAL).removed == [casino.replace(" [1]", "")]
    assert enforce_grounding("The threshold for occasional transactions under Recommendation 10 is USD/EUR 15,000 [1].",
                             [fatf], REFUSAL).refusal_reason is None
    casinos = hit(3, "Casinos (under Recommendation 22) – USD/EUR 3,000.", title="THE FATF RECOMMENDATIONS")
    for_casinos = enforce_grounding("For casinos the threshold is USD/EUR 3,000 [1].", [casinos], REFUSAL)
    assert for_casinos.refusal_reason is None
    law = hit(2, "司法書士は、特定業務に係る取引を行うに際しては、本人特定事項の確認を行わなければならない。")
    lawyers = enforce_grounding("弁護士は、特定業務に係る取引で本人特定事項の確認を行わなければならない[1]。",
                                [law], REFUSAL)
    assert lawyers.refusal_reason == "only_unsupported"


def test_a_standard_setter_the_claim_names_must_be_its_sources_or_named_by_it():
    """The 1.5B with eight passages answered how recent a utility bill must be "under the Basel guidelines" (Basel
    does not say) with JMLSG's three months. Basel's own pages need not repeat its name: the file name counts."""
    claim = "The Basel guidelines require utility bills to be dated within the last 3 months [1]."
    text = "Utility bills must be dated within the last 3 months."
    jmlsg = hit(5, text, title="Prevention of money laundering/ combating terrorist financing")
    assert [s.kind for s in missing_specifics(claim, text)] == ["name"]
    assert enforce_grounding(claim, [jmlsg], REFUSAL).refusal_reason == "only_unsupported"
    basel = jmlsg.model_copy(update={"source": "Basel-ML-TF-Risk-Management.pdf",
                                     "title": "Sound management of risks related to money laundering"})
    assert enforce_grounding(claim, [basel], REFUSAL).refusal_reason is None
    fatf = hit(3, "The FATF issued its Recommendations on record keeping.", title="THE FATF RECOMMENDATIONS")
    fatf = fatf.model_copy(update={"source": "FATF-40-Recommendations.pdf"})  # a file name's number states nothing
    claim = "The FATF issued its 40 Recommendations on record keeping [1]."
    assert enforce_grounding(claim, [fatf], REFUSAL).refusal_reason == "only_unsupported"


def test_a_claim_about_one_kind_of_record_does_not_stand_on_a_sentence_about_another():
    """The 1.5B answered 「取引記録のほうは？」 with 犯収法第六条's sentence on 確認記録 (overlap 0.91): 取引記録
    are kept seven years from the transaction (第七条), 確認記録 from the end of the contract."""
    article6 = hit(2, "２　特定事業者は、確認記録を、特定取引等に係る契約が終了した日その他の主務省令で定める日から、"
                      "七年間保存しなければならない。",
                   title="犯罪による収益の移転防止に関する法律", section="第六条（確認記録の作成義務等）")
    swapped = "取引記録は、特定取引等に係る契約が終了した日から七年間保存しなければならない[1]。"
    assert enforce_grounding(swapped, [article6], REFUSAL).refusal_reason == "only_unsupported"
    right = swapped.replace("取引記録", "確認記録")
    assert enforce_grounding(right, [article6], REFUSAL).refusal_reason is None
    assert not missing_specifics("本人確認記録を作成する。", "銀行等は、本人確認記録を作成しなければならない。")


def test_a_specific_stated_more_often_than_in_the_source_is_not_supported():
    """The labelled set's changed article: 第五十三条 made 第五十四条, which the statute names once further on."""
    tail = "の規定により機構に払い戻されるべき金額を除く。）に応じ、当該預金者等が金融機関に対して有する債権を取得する"
    paid = "の仮払金の支払をしたときは、その支払金額（第五十四条第四項"
    law = hit(4, f"機構は、預金者等に対し第五十三条第四項{paid}{tail}。", title="預金保険法")
    changed = f"機構は、預金者等に対し第五十四条第四項{paid}{tail}[1]。"
    assert enforce_grounding(changed, [law], REFUSAL).refusal_reason == "only_unsupported"
    as_written = changed.replace("第五十四条第四項の仮払金", "第五十三条第四項の仮払金")
    assert enforce_grounding(as_written, [law], REFUSAL).refusal_reason is None
    twice = "確認記録は七年間、取引記録は七年間保存する。"
    assert not missing_specifics("確認記録は7年間、取引記録も7年間保存する。", twice)


def test_a_law_chunk_supports_its_own_name_and_article_from_its_title_and_section():
    text = "犯罪による収益の移転防止に関する法律第四条により、200万円を超える取引では取引時確認を行います[2]。"
    grounded = enforce_grounding(text, [GUIDE, LAW], REFUSAL)
    assert grounded.refusal_reason is None and grounded.citations[0].n == 2


def test_the_model_saying_the_documents_do_not_state_it_is_a_refusal_that_keeps_what_they_do_say():
    text = f"{REFUSAL}なお、疑わしい取引の届出は直ちに行う態勢を構築することとされています[1]。"
    grounded = enforce_grounding(text, [GUIDE], REFUSAL)
    assert grounded.refusal_reason == "not_stated"
    assert grounded.text.startswith(REFUSAL) and "直ちに" in grounded.text and grounded.citations
    alone = enforce_grounding(f"{REFUSAL}。", [GUIDE], REFUSAL)  # what is left of the refusal is no claim
    assert alone.refusal_reason == "not_stated" and alone.removed == []


@pytest.mark.parametrize("question,kind", [
    ("疑わしい取引の届出は、何営業日以内に出さないといけませんか？", "period"),
    ("取引時確認の確認記録って、何年間保存しないといけないですか？", "period"),
    ("Within how many hours must the STR be filed?", "period"),
    ("現金で振込をしたいお客様がいます。いくらを超えると取引時確認が必要ですか？", "amount"),
    ("What is the maximum fine for tipping off a customer?", "amount"),
    ("Above what amount do we have to do CDD on an occasional transaction?", "amount"),
    ("What ownership percentage does FATF give as an example of a controlling interest?", "percentage"),
    ("職員向けの研修は、年に何回以上やらないといけませんか？", "number"),
    ("By what date did banks have to implement the guidelines?", "number"),
    ("How much time do we have to file the report?", None),
    ("コルレス契約を結ぶ場合、犯収法のどの条文の措置を実施する必要がありますか？", "article"),
    ("Which article defines a shell bank?", "article"),
    # asks for no specific: 直ちに, "before launch" and "senior management" answer these
    ("疑わしい取引に当たると判断したら、届出はどのタイミングで行う必要がありますか？", None),
    ("照合はいつまでにやればいいですか？", None),
    ("When does FATF expect a bank to assess the ML/TF risk of a new product?", None),
    ("Who has to sign off on opening an account for a foreign PEP?", None),
    ("改正犯収法は何年に施行されましたか？", None),  # in which year: a date answers it
    ("外部専門家のレビューは何年に一度受けるべきですか？", "period"),  # once every how many years
])
def test_the_kind_of_specific_a_question_asks_for(question, kind):
    assert asked_specific(question) == kind


def test_a_supported_answer_without_the_asked_specific_is_a_refusal_that_keeps_what_the_documents_say():
    """"Within how many days" is not answered by "directly", however well the source supports it."""
    said = "疑わしい取引の届出は直ちに行う態勢を構築することとされています[1]。"
    grounded = enforce_grounding(said, [GUIDE], REFUSAL, "疑わしい取引の届出は何営業日以内に出さないといけませんか？")
    assert grounded.refusal_reason == "not_stated" and grounded.removed == []
    assert grounded.text.startswith(REFUSAL) and "直ちに" in grounded.text and grounded.citations
    answered = enforce_grounding(said, [GUIDE], REFUSAL, "疑わしい取引の届出はどのタイミングで行いますか？")
    assert answered.refusal_reason is None and answered.text == said
    kept = enforce_grounding("確認記録は七年間保存しなければならない[1]。", [GUIDE], REFUSAL,
                             "確認記録は何年間保存しますか？")
    assert kept.refusal_reason is None
    article = enforce_grounding("200万円を超える取引では取引時確認を行います[1]。", [LAW], REFUSAL,
                                "取引時確認はどの条文で定められていますか？")
    assert article.refusal_reason == "not_stated"  # a number, but not the article asked for
    items = hit(5, "⑤ 疑わしい取引に該当すると判断した場合には、疑わしい取引の届出を直ちに行う態勢を構築すること")
    listed = enforce_grounding("⑤ 疑わしい取引の届出を直ちに行う態勢を構築すること[1]。", [items], REFUSAL,
                               "疑わしい取引の届出は何日以内ですか？")
    assert listed.refusal_reason == "not_stated"  # ⑤ numbers a list item; it is not the number asked for


@pytest.mark.parametrize("claim,question,answers", [
    ("14 years' imprisonment and/or an unlimited fine.", "What is the maximum fine in euros for tipping off?", False),
    ("USD/EUR 15,000", "Above what amount do we have to do CDD on an occasional transaction?", True),
    ("The threshold is EUR 15 000.", "Above what amount is CDD required?", True),
    ("CDD measures (a) to (d) apply in accordance with Recommendation 1.", "Above what amount is CDD required?", False),
    ("現金の振込は10万円を超えると確認が必要です。", "現金の振込は、いくらを超えると確認が必要ですか？", True),
    ("記録は5年間保存します。", "記録は何年間保存しますか？", True),
    ("記録は年2回見直します。", "記録は何年間保存しますか？", False),
    # a date is not a period: the 1.5B answered 「何年ごとに公表」 with a law's 平成二十三年 (its year of enactment)
    ("調査書は、平成二十三年法律第三十一号の規定により適用される。", "調査書は何年ごとに公表されますか？", False),
    ("改正犯収法は平成28年10月に施行されました。", "By what date did the amended act take effect?", True),
    ("A 25 per cent threshold is an example.", "What ownership percentage does FATF give?", True),
    ("Recommendation 24 covers legal persons.", "What ownership percentage does FATF give?", False),
])
def test_the_stated_specific_must_be_of_the_kind_asked_for(claim, question, answers):
    """A period does not answer "what fine", an article number does not answer "above what amount"."""
    assert states_asked_specific([question], [claim]) is answers


def test_a_follow_up_is_held_to_the_ask_it_was_typed_with():
    """The rewrite of 「その承認は、何営業日以内に…」 read 「どの営業日以内に…」 and asked for no number; the answer, a
    verified sentence about something else, was shown. The typed question's ask holds as well."""
    said = "疑わしい取引の届出は直ちに行う態勢を構築することとされています[1]。"
    rewrite = "疑わしい取引の届出は、どの営業日以内に行う必要がありますか？"
    assert enforce_grounding(said, [GUIDE], REFUSAL, rewrite).refusal_reason is None
    typed = "その届出は、何営業日以内に出さないといけないんですか？"
    assert enforce_grounding(said, [GUIDE], REFUSAL, rewrite, typed).refusal_reason == "not_stated"


def test_markdown_lists_survive_the_removal_of_an_unsupported_item():
    text = "確認記録の扱い：\n- 確認記録は7年間保存します[1]。\n- 記録は毎月本部に送付します[1]。"
    grounded = enforce_grounding(text, [GUIDE], REFUSAL)
    assert grounded.text == "確認記録の扱い：\n- 確認記録は7年間保存します[1]。"


def test_refusal_metrics_count_each_kind_of_case():
    from core.schema import Answer, Timings
    from eval.metrics import false_refusal, grounded_answer, refusal_precision, refusal_recall
    from eval.testset import TestCase

    refused = Answer(answer=REFUSAL, citations=[], refused=True, contexts=[], timings=Timings(),
                     refusal_reason="only_unsupported")
    answerable, unanswerable = TestCase(id="a", question="q"), TestCase(id="u", question="q", answerable=False)
    assert refusal_recall(unanswerable, refused).value == 1.0 and refusal_recall(answerable, refused).status == "n/a"
    assert refusal_precision(answerable, refused).value == 0.0 and refusal_precision(unanswerable, refused).value == 1.0
    assert false_refusal(answerable, refused).value == 1.0
    assert grounded_answer(answerable, refused).value == 0.0 and grounded_answer(unanswerable, refused).status == "n/a"


def test_a_stored_answer_is_checked_again_by_the_current_verifier():
    """``python -m eval verifier rescore``: the model's stored sentences, re-checked without the model."""
    from core.schema import Answer, AnswerSentence, Timings
    from eval.rescore import recheck
    from eval.testset import TestCase

    case = TestCase(id="q", question="For how many years should financial institutions maintain records on "
                                     "transactions?", answerable=True)
    stored = Answer(answer=REFUSAL, citations=[], refused=True, refusal_reason="only_unsupported", contexts=[FATF],
                    timings=Timings(), sentences=[AnswerSentence(text="Five years.", verified=False)],
                    removed_claims=["Five years."], language="ja")
    again = recheck(case, stored)
    assert not again.refused and again.answer == "Five years." and again.citations[0].doc_id == "d3"
    nothing = stored.model_copy(update={"refusal_reason": "no_relevant_passage", "contexts": []})
    assert recheck(case, nothing) == nothing  # the model was not asked: nothing to check
    items = hit(6, "① 確認記録を作成すること\n② 確認記録を七年間保存すること")
    listed = Answer(answer="", citations=[], refused=False, contexts=[items], timings=Timings(), language="ja",
                    sentences=[AnswerSentence(text=t, markers=[1], verified=True)
                               for t in ("① 確認記録を作成すること", "② 確認記録を七年間保存すること")])
    again = recheck(TestCase(id="l", question="確認記録はどう扱いますか？"), listed)
    assert not again.refused and [s.verified for s in again.sentences] == [True, True]  # items stay items


def test_a_stored_run_is_scored_again_against_corrected_gold_pages(tmp_path):
    """``python -m eval verifier rescore RUN --testset FILE``: a gold page added to the test set after the run
    (a page that states the answer too) counts for the run's stored answers, without the model."""
    from core.schema import Answer, AnswerSentence, Timings
    from eval.rescore import rescore
    from eval.run_store import RunStore
    from eval.testset import GoldSource, TestCase

    question = "For how many years should financial institutions maintain records on transactions?"
    case = TestCase(id="q", question=question, gold_sources=[GoldSource(source="doc1.pdf", pages=[1])])
    sentence = "Financial institutions should maintain all necessary records on transactions for at least five years."
    answer = Answer(answer=sentence + "[1]", citations=[], refused=False, contexts=[FATF], timings=Timings(),
                    sentences=[AnswerSentence(text=sentence, markers=[1], verified=True)], language="en")
    store = RunStore(tmp_path / "runs.sqlite3")
    store.create_run("r1", "set.jsonl", "sha", "key", {}, ["grounded_answer"], None, ["q"])
    store.save_sample("r1", 0, "q", {"id": "q", "case": case.model_dump(mode="json"),
                                     "answer": answer.model_dump(mode="json")})
    corrected = case.model_copy(update={"gold_sources": [GoldSource(source="doc3.pdf", pages=[3])]})
    stored, again, changed = rescore(store, "r1")
    assert stored.means["grounded_answer"] == again.means["grounded_answer"] == 0.0 and not changed
    stored, again, changed = rescore(store, "r1", labels={"q": corrected})
    assert (stored.means["grounded_answer"], again.means["grounded_answer"]) == (0.0, 1.0)
    assert changed == ["q: grounded 0.0 -> 1.0"]
    store.close()
