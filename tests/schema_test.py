import pytest

from conftest import EMODB_EMOTIONS, run_main
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB, HUME_VB_EMOTIONS, LAYOUTS, LabelSchema


def test_hume_vb_default_has_the_official_emotion_order():
    assert HUME_VB.emotion_columns == HUME_VB_EMOTIONS
    assert HUME_VB_EMOTIONS[0] == "Awe" and HUME_VB_EMOTIONS[-1] == "Surprise"
    assert (HUME_VB.class_column, HUME_VB.age_column) == ("Country", "Age")


def test_from_flags_parses_comma_lists_and_round_trips_through_json():
    schema = LabelSchema.from_flags(",".join(EMODB_EMOTIONS), "Sex", "Age").with_classes(
        ["female", "male"])
    assert schema.emotion_columns == EMODB_EMOTIONS and schema.num_classes == 2
    assert LabelSchema.from_json(schema.to_json()) == schema


@pytest.mark.parametrize("kwargs, message", [
    (dict(emotion_columns=(), class_column="", age_column=""),
     "--emotion_columns, --class_column and --age_column are all empty"),
    (dict(emotion_columns=("A", "A")), "named twice"),
    (dict(emotion_columns=("A", "Age")), "--age_column"),
])
def test_bad_schemas_name_the_flag(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        LabelSchema(**kwargs)


def test_layout_defaults_to_hume_vb_and_is_validated():
    assert HUME_VB.layout == "hume_vb" and LAYOUTS == ("hume_vb", "avb")
    assert LabelSchema.from_json(LabelSchema(layout="avb").to_json()).layout == "avb"
    with pytest.raises(UserInputError, match="--dataset: 'emodb' is not one of hume_vb, avb"):
        LabelSchema(layout="emodb")


def test_classes_must_be_fitted_before_use():
    with pytest.raises(ValueError, match="classes"):
        HUME_VB.num_classes


def test_an_empty_column_setting_leaves_its_task_out():
    assert HUME_VB.tasks == ("emotion", "country", "age")
    no_age = LabelSchema.from_flags("A,B", "Category", "")
    assert no_age.tasks == ("emotion", "country") and no_age.label_columns == ("A", "B", "Category")
    assert LabelSchema.from_flags([], "", "Age").tasks == ("age",)
    assert LabelSchema.from_flags([""], "C", "").tasks == ("country",)   # `--emotion_columns=`
    assert LabelSchema.from_json(no_age.to_json()) == no_age
    no_age.check_tasks(["country", "emotion"])
    with pytest.raises(UserInputError, match=r"^--tasks: the data has no age labels "
                                             r"\(--age_column is empty\); it has emotion, country$"):
        no_age.check_tasks(["emotion", "age"])
    with pytest.raises(UserInputError, match=r"--tasks: the data has no class labels "
                                             r"\(--class_column is empty\); it has emotion$"):
        LabelSchema(class_column="", age_column="").check_tasks(["country"])
    with pytest.raises(ValueError, match="no class column"):
        LabelSchema(class_column="").num_classes


def test_at_least_one_task_must_remain():
    with pytest.raises(UserInputError, match="all empty: the data must label at least one task"):
        LabelSchema.from_flags("", "", "")


if __name__ == "__main__":
    run_main()
