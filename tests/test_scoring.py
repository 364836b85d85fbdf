import pytest

from akb.scoring.answers import extract_choice, string_match, strip_reasoning

CHOICES = ("crescendo", "diminuendo", "a tempo", "ritardando")


@pytest.mark.parametrize(
    "output, index, status",
    [
        ("B", 1, "letter"),
        ("(c)", 2, "letter"),
        ("The answer is D.", 3, "letter"),
        ("Answer: (A)", 0, "letter"),
        ("B) diminuendo, because it gets softer", 1, "letter"),
        ("I believe the correct option is (C) here.", 2, "letter"),
        ("It is a crescendo.", 0, "option_text"),  # the article "a" is not a letter
        ("ritardando", 3, "option_text"),
        ("<think>maybe (A)?</think>\nThe answer is B.", 1, "letter"),
        ("crescendo or diminuendo", None, "unparseable"),  # two options: never guess
        ("A loud passage", None, "unparseable"),
        ("", None, "unparseable"),
        ("E", None, "unparseable"),  # not a letter of this item
    ],
)
def test_extract_choice(output, index, status):
    result = extract_choice(output, CHOICES, "ABCD")
    assert (result.index, result.status) == (index, status)


def test_option_inside_another_option_counts_once():
    choices = ("noise", "white noise", "pink noise", "hum")
    assert extract_choice("It is white noise.", choices, "ABCD").index == 1


def test_containment_is_by_whole_words():
    choices = ("Man", "Woman", "Child", "Robot")
    assert extract_choice("It is a woman, not a man.", choices, "ABCD").status == "unparseable"
    assert extract_choice("A woman.", choices, "ABCD").index == 1


def test_letters_follow_the_number_of_choices():
    assert extract_choice("C", ("yes", "no"), "AB").status == "unparseable"


def test_unterminated_reasoning_is_removed():
    assert strip_reasoning("<think>long reasoning about (A)") == ""


def test_string_match_official_rule():
    choices = ["Man", "Woman", "Child", "Robot"]
    assert string_match("Man", "The speaker is a man.", choices)
    assert not string_match("Man", "B", choices)  # a bare letter is wrong: map letters first
    assert not string_match("Man", "", choices)
    assert not string_match("Man", "man or woman", choices)  # shares a word only a wrong choice has


def test_string_match_shared_words():
    choices = ["Sound of a dog", "Sound of a cat"]
    assert string_match("Sound of a dog", "sound of a dog barking", choices)
    assert not string_match("Sound of a dog", "a dog and a cat", choices)
