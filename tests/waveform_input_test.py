"""The waveform families' input path: the training crop fitted to the clips unless told."""

from conftest import EMODB, EMODB_EMOTIONS, requires_emodb, run_main
from vb_keras.data import exvo
from vb_keras.families import registry, resnets
from vb_keras.families.base import DataSource
from vb_keras.params import TrainingParams
from vb_keras.schema import LabelSchema


@requires_emodb
def test_the_waveform_reader_fits_its_training_crop_to_the_clips_unless_told():
    schema = LabelSchema.from_flags(",".join(EMODB_EMOTIONS), "Sex", "Age")
    table, schema = exvo.read_and_split(EMODB, schema)
    table = table[table.Split == "Train"].head(16)   # a small subset: only Train is read here
    source = DataSource(EMODB, table, schema)
    fitted = registry.split_reader(TrainingParams(model="resnet18", batch_size=8), source)
    assert fitted.train_clip_seconds is None and fitted.recorded == {}
    features, _ = next(iter(fitted.batches("Train", training=True)))
    assert fitted.train_clip_seconds == 2.0                 # EmoDB's clips all last 2.0 s
    assert fitted.recorded == {"train_clip_seconds": 2.0}
    assert features["waveform"].shape == (8, 32000)
    told = registry.split_reader(TrainingParams(model="resnet18", batch_size=8,
                                                family=resnets.ResNetConfig(clip_seconds=4)),
                                 source)
    assert next(iter(told.batches("Train", training=True)))[0]["waveform"].shape == (8, 64000)


if __name__ == "__main__":
    run_main()
