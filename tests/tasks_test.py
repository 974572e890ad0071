import pytest

from vb_keras import tasks
from vb_keras.schema import HUME_VB, LabelSchema


def test_every_task_has_an_entry_in_the_canonical_order():
    assert tasks.TASKS == ("emotion", "country", "age") == tuple(tasks.REGISTRY)
    assert tasks.FIGURES == ("mean_ccc", "uar", "mae", "hmean")
    assert [tasks.task(name).column_flag for name in tasks.TASKS] == [
        "--emotion_columns", "--class_column", "--age_column"]
    with pytest.raises(ValueError, match="unknown task 'valence': expected one of emotion, "
                                         "country, age"):
        tasks.task("valence")


def test_columns_and_output_sizes_follow_the_schema():
    schema = HUME_VB.with_classes(["USA", "China", "South Africa", "Venezuela"])
    assert tasks.task("emotion").columns(schema) == HUME_VB.emotion_columns
    assert tasks.task("country").columns(schema) == ("Country",)
    assert [tasks.task(name).units(schema) for name in tasks.TASKS] == [10, 4, 1]
    no_age = LabelSchema(emotion_columns=("A", "B"), class_column="Sex", age_column="")
    assert tasks.task("age").columns(no_age) == () and no_age.tasks == ("emotion", "country")
    assert no_age.label_columns == ("A", "B", "Sex")


def test_a_single_task_model_is_kept_by_its_own_figure():
    assert tasks.task("emotion").monitor == ("val_mean_ccc", "max")
    assert tasks.task("country").monitor == ("val_uar", "max")
    assert tasks.task("age").monitor == ("val_mae", "min")


def test_task_lists_come_back_in_the_canonical_order():
    assert tasks.canonical(["age", "emotion"]) == ("emotion", "age")
    for bad in ([], ["emotion", "emotion"], ["emotion", "valence"]):
        with pytest.raises(ValueError, match="distinct names among emotion, country, age"):
            tasks.canonical(bad)
