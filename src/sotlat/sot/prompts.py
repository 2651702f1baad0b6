"""The paper's prompt templates, verbatim (Prompt 1 and Prompt 2, §2.1), and their chat rendering.

The paper writes "[User:]" and "[Assistant:]"; here the model's own chat template supplies them,
and the partial answer — "1." for the skeleton, "{index}. {point skeleton}" for a point — is
appended after the assistant turn's opening so that the model continues it (App. A.3).
"""

from __future__ import annotations

SKELETON_TEMPLATE = """You're an organizer responsible for only giving the skeleton (not the full content) for answering the question. Provide the skeleton in a list of points (numbered 1., 2., 3., etc.) to answer the question. Instead of writing a full sentence, each skeleton point should be very short with only 3~5 words. Generally, the skeleton should have 3~10 points.

Question:
What are the typical types of Chinese dishes?
Skeleton:
1. Dumplings.
2. Noodles.
3. Dim Sum.
4. Hot Pot.
5. Wonton.
6. Ma Po Tofu.
7. Char Siu.
8. Fried Rice.

Question:
What are some practical tips for individuals to reduce their carbon emissions?
Skeleton:
1. Energy conservation.
2. Efficient transportation.
3. Home energy efficiency.
4. Reduce water consumption.
5. Sustainable diet.
6. Sustainable travel.

Now, please provide the skeleton for the following question.
{question}
Skeleton:"""

SKELETON_PARTIAL_ANSWER = "1."

POINT_TEMPLATE = """You're responsible for continuing the writing of one and only one point in the overall answer to the following question.

{question}

The skeleton of the answer is

{skeleton}

Continue and only continue the writing of point {point_index}. Write it **very shortly** in 1~2 sentence and do not continue with other points!"""

POINT_PARTIAL_ANSWER = "{point_index}. {point_skeleton}"


def chat_prompt(tokenizer, user: str, partial_answer: str = "") -> str:
    """The user turn in the model's chat template, the assistant turn opened, the partial answer after it."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
    return text + partial_answer


def skeleton_prompt(tokenizer, question: str) -> str:
    return chat_prompt(tokenizer, SKELETON_TEMPLATE.format(question=question), SKELETON_PARTIAL_ANSWER)


def point_prompt(tokenizer, question: str, skeleton: str, index: int, point: str) -> str:
    user = POINT_TEMPLATE.format(question=question, skeleton=skeleton, point_index=index)
    return chat_prompt(tokenizer, user, POINT_PARTIAL_ANSWER.format(point_index=index, point_skeleton=point))
