"""Merge fields: compose-time errors, fallbacks, maximum lengths, and literal rendering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.merge import STANDARD_FIELDS, MergeError, compile_template

RENEWAL = "Hi {{first_name|Member|max=12}}, your {{chapter|chapter}} membership renews on 1 July."


@pytest.mark.parametrize(
    ("values", "rendered"),
    [
        ({"first_name": "Zoë", "chapter": "Boston"}, "Hi Zoë, your Boston membership renews on 1 July."),
        ({"first_name": "  Ann  ", "chapter": "Leeds"}, "Hi Ann, your Leeds membership renews on 1 July."),
        ({}, "Hi Member, your chapter membership renews on 1 July."),
        ({"first_name": None, "chapter": ""}, "Hi Member, your chapter membership renews on 1 July."),
        ({"first_name": "   "}, "Hi Member, your chapter membership renews on 1 July."),
        ({"first_name": "Christopher-James"}, "Hi Member, your chapter membership renews on 1 July."),
        ({"first_name": "Maximiliana"}, "Hi Maximiliana, your chapter membership renews on 1 July."),
    ],
)
def test_render_uses_value_then_fallback(values: dict[str, object], rendered: str) -> None:
    assert compile_template(RENEWAL).render(values) == rendered


@pytest.mark.parametrize(
    ("body", "values", "rendered"),
    [
        ("{{chapter|max=6}} news", {"chapter": "Greater Boston"}, "Greate news"),
        ("Hi {{first_name|max=3}}", {"first_name": "Ann👍🏽"}, "Hi Ann"),
        ("Hi {{first_name|max=4}}", {"first_name": "Ann👍🏽"}, "Hi Ann👍🏽"),
        ("Hi {{first_name||max=4}}!", {}, "Hi !"),
        ("Hi {{ First_Name | Member }}", {"first_name": "Zoë"}, "Hi Zoë"),
        ("ID {{member_id}}", {"member_id": 1234}, "ID 1234"),
        ("save {10%} {{{first_name}}}", {"first_name": "Ann"}, "save {10%} {Ann}"),
        ("Hi {{first_name}}", {"first_name": "{{chapter}}"}, "Hi {{chapter}}"),
        ("No fields at all", {}, "No fields at all"),
    ],
)
def test_render_edges(body: str, values: dict[str, object], rendered: str) -> None:
    assert compile_template(body).render(values) == rendered


def test_fields_lists_each_field_once_in_order() -> None:
    template = compile_template("{{chapter|x}} {{first_name|y}} {{chapter|z}}")
    assert template.fields == ("chapter", "first_name")


def test_unknown_fields_are_all_named_with_suggestions() -> None:
    with pytest.raises(MergeError) as caught:
        compile_template("Hi {{frist_name}} from {{chaptr}} and {{shoe_size}}")
    assert caught.value.code == "merge_unknown_field"
    assert caught.value.fields == ("frist_name", "chaptr", "shoe_size")
    assert "did you mean {{first_name}}" in str(caught.value)
    assert "{{shoe_size}}" in str(caught.value)


def test_known_fields_can_be_given_by_the_caller() -> None:
    template = compile_template("Your seat: {{seat}}", fields={"seat"})
    assert template.render({"seat": "B12"}) == "Your seat: B12"
    with pytest.raises(MergeError):
        compile_template("Hi {{first_name}}", fields={"seat"})


@pytest.mark.parametrize(
    ("body", "code", "position"),
    [
        ("Hi {{first_name}", "merge_unbalanced_braces", 3),
        ("Hi first_name}} there", "merge_unbalanced_braces", 13),
        ("{{first_name}} and {{chapter", "merge_unbalanced_braces", 19),
        ("{{first{name}}", "merge_unbalanced_braces", 0),
        ("Hi {{}}", "merge_field_invalid", 3),
        ("Hi {{first name}}", "merge_field_invalid", 3),
        ("Hi {{1st}}", "merge_field_invalid", 3),
        ("Hi {{__import__('os')}}", "merge_field_invalid", 3),
        ("{{first_name|a|b}}", "merge_field_invalid", 0),
        ("{{first_name|max=0}}", "merge_field_invalid", 0),
        ("{{first_name|max=x}}", "merge_field_invalid", 0),
        ("{{first_name|max=3|max=4}}", "merge_field_invalid", 0),
        ("{{first_name|Member|max=3}}", "merge_fallback_too_long", 0),
    ],
)
def test_compose_time_errors(body: str, code: str, position: int) -> None:
    with pytest.raises(MergeError) as caught:
        compile_template(body)
    assert (caught.value.code, caught.value.position) == (code, position)


def test_a_missing_value_without_fallback_is_refused_at_render_time() -> None:
    template = compile_template("Hi {{first_name}}")
    with pytest.raises(MergeError) as caught:
        template.render({"first_name": " "})
    assert caught.value.code == "merge_value_missing"
    assert caught.value.fields == ("first_name",)


_VALUE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(_VALUE, _VALUE)
def test_values_are_inserted_literally(first_name: str, chapter: str) -> None:
    template = compile_template("<{{first_name|-}}|{{chapter|-}}>")
    expected = f"<{first_name.strip() or '-'}|{chapter.strip() or '-'}>"
    assert template.render({"first_name": first_name, "chapter": chapter}) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="{}|ab _=1", max_size=40))
def test_any_template_either_compiles_or_raises_merge_error(body: str) -> None:
    try:
        template = compile_template(body, fields={"a", "b", "ab"})
    except MergeError:
        return
    assert isinstance(template.render({"a": "x", "b": "y", "ab": "z"}), str)


def test_standard_fields_cover_the_usual_names() -> None:
    assert {"first_name", "last_name", "chapter"} <= STANDARD_FIELDS
