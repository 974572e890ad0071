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
    (dict(emotion_columns=()), "--emotion_columns"),
    (dict(emotion_columns=("A", "A")), "named twice"),
    (dict(emotion_columns=("A", "Age")), "--age_column"),
    (dict(class_column=""), "--class_column"),
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


if __name__ == "__main__":
    run_main()
