import numpy as np
import pytest

from conftest import run_main
from vb_keras.evaluation import bootstrap, metrics, scoring
from vb_keras.schema import LabelSchema

NUM_EMOTIONS, NUM_CLASSES = 3, 4
SCHEMA = LabelSchema(emotion_columns=("A", "B", "C"), class_column="Country").with_classes(
    ["w", "x", "y", "z"])


def make_split(num_speakers, clips_per_speaker, seed=0):
    """Labels with speaker-level structure: country and age per speaker, emotions partly per speaker."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(num_speakers), clips_per_speaker)
    speaker_emotion = rng.random((num_speakers, NUM_EMOTIONS))
    emotion = np.clip(0.6 * speaker_emotion[speakers]
                      + 0.4 * rng.random((len(speakers), NUM_EMOTIONS)), 0, 1)
    y_true = {"emotion": emotion,
              "country": rng.integers(0, NUM_CLASSES, num_speakers)[speakers],
              "age": rng.uniform(18, 60, num_speakers)[speakers]}
    return y_true, speakers


def noisy_prediction(y_true, noise, seed, speakers=None, speaker_noise=0.0):
    """Truth plus clip noise (and, optionally, an error shared by all clips of a speaker)."""
    rng = np.random.default_rng(seed)
    n = len(y_true["age"])
    shared = np.zeros(n) if speakers is None else rng.normal(0, 1, speakers.max() + 1)[speakers]
    emotion = (y_true["emotion"] + noise * rng.normal(0, 1, (n, NUM_EMOTIONS))
               + speaker_noise * shared[:, None])
    scores = np.eye(NUM_CLASSES)[y_true["country"]] + 2 * noise * rng.normal(0, 1, (n, NUM_CLASSES))
    age = y_true["age"] + 20 * noise * rng.normal(0, 1, n) + 20 * speaker_noise * shared
    return {"emotion": emotion, "country": scores, "age": age[:, None]}


def width(interval):
    return interval.high - interval.low


def test_weights_count_the_clips_of_the_drawn_speakers():
    rng = np.random.default_rng(0)
    clips_per_speaker = rng.integers(1, 6, 15)
    speakers = rng.permutation(np.repeat([f"s{i:02d}" for i in range(15)], clips_per_speaker))
    weights = bootstrap.speaker_resample_weights(speakers, 40, seed=3)
    assert weights.shape == (40, len(speakers))
    names = np.unique(speakers)
    per_speaker = np.stack([weights[:, speakers == name][:, 0] for name in names], axis=1)
    for name, column in zip(names, per_speaker.T):   # clips of one speaker share a weight
        assert (weights[:, speakers == name] == column[:, None]).all()
    assert (per_speaker.sum(axis=1) == len(names)).all()   # as many draws as speakers
    assert (weights.sum(axis=1) == per_speaker @ clips_per_speaker).all()
    np.testing.assert_array_equal(weights, bootstrap.speaker_resample_weights(speakers, 40, seed=3))
    assert not np.array_equal(weights, bootstrap.speaker_resample_weights(speakers, 40, seed=4))


def assert_weighted_figures_equal_explicit_resampling(y_true, y_pred, weights):
    vectorised = bootstrap.weighted_figures(y_true, y_pred, weights)
    for row, weight in enumerate(weights):
        clips = np.repeat(np.arange(len(weight)), weight)
        true = {key: value[clips] for key, value in y_true.items()}
        pred = {key: np.asarray(value)[clips] for key, value in y_pred.items()}
        mean_ccc = metrics.mean_ccc(true["emotion"], pred["emotion"])
        uar = metrics.unweighted_average_recall(true["country"], pred["country"])
        mae = metrics.mean_absolute_error(true["age"], pred["age"])
        expected = {"mean_ccc": mean_ccc, "uar": uar, "mae": mae,
                    "hmean": metrics.challenge_score(mean_ccc, uar, mae)}
        for figure in bootstrap.FIGURES:
            assert vectorised[figure][row] == pytest.approx(expected[figure], abs=1e-9), (figure, row)
    return vectorised


def test_weighted_figures_equal_metrics_on_explicitly_resampled_clips():
    y_true, speakers = make_split(12, 5)
    y_true["country"][speakers == 0] = 3            # class 3 belongs to speaker 0 alone
    y_true["country"][(speakers != 0) & (y_true["country"] == 3)] = 1
    weights = bootstrap.speaker_resample_weights(speakers, 6, seed=1)
    without_speaker_0 = np.where(speakers == 0, 0, bootstrap.speaker_resample_weights(
        speakers, 1, seed=2)[0] + 1)
    only_speaker_5 = np.where(speakers == 5, 12, 0)   # truth constant in country and age
    weights = np.vstack([weights, without_speaker_0, only_speaker_5])
    good = noisy_prediction(y_true, 0.1, seed=1)
    good["country"] = good["country"].argmax(axis=1)   # indices as well as scores
    assert_weighted_figures_equal_explicit_resampling(y_true, noisy_prediction(y_true, 0.1, seed=0),
                                                      weights)
    figures = assert_weighted_figures_equal_explicit_resampling(y_true, good, weights)
    assert figures["uar"][-2] > 0 and not np.isin(3, y_true["country"][weights[-2] > 0])

    naive = {"emotion": np.tile(y_true["emotion"].mean(axis=0), (60, 1)),
             "country": np.zeros(60, np.int64), "age": np.full(60, 30.0)}
    figures = assert_weighted_figures_equal_explicit_resampling(y_true, naive, weights)
    assert (figures["mean_ccc"] == 0).all() and (figures["hmean"] == 0).all()


def test_one_seed_estimate_is_evaluates_figure_and_a_better_predictor_scores_higher():
    y_true, speakers = make_split(80, 5)
    intervals = {}
    for noise in (0.1, 0.4):
        y_pred = noisy_prediction(y_true, noise, seed=0)
        result = bootstrap.bootstrap(y_true, y_pred, speakers, num_resamples=300, seed=0)
        evaluated = scoring.evaluate(y_true, y_pred, SCHEMA, "Val")
        for figure, interval in result.items():
            assert interval.estimate == getattr(evaluated, figure)
            assert interval.low <= interval.estimate <= interval.high and interval.std == 0.0
        intervals[noise] = result
    good, bad = intervals[0.1], intervals[0.4]
    for figure in ("mean_ccc", "uar", "hmean"):
        assert good[figure].low > bad[figure].high, figure
    assert good["mae"].high < bad["mae"].low
    assert set(good["mae"].to_dict()) == {"estimate", "low", "high", "std"}


def test_several_seeds_average_the_figures_and_report_their_spread():
    y_true, speakers = make_split(30, 4)
    y_preds = [noisy_prediction(y_true, noise, seed) for seed, noise in enumerate((0.1, 0.2, 0.3))]
    result = bootstrap.bootstrap(y_true, y_preds, speakers, num_resamples=100, seed=5)
    per_seed = [scoring.evaluate(y_true, y_pred, SCHEMA, "Val") for y_pred in y_preds]
    for figure, interval in result.items():
        values = [getattr(evaluated, figure) for evaluated in per_seed]
        assert interval.estimate == pytest.approx(np.mean(values), abs=1e-12)
        assert interval.std == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        assert interval.low < interval.high


def test_chunking_does_not_change_the_result(monkeypatch):
    y_true, speakers = make_split(20, 3)
    y_pred = noisy_prediction(y_true, 0.2, seed=0)
    expected = bootstrap.bootstrap(y_true, y_pred, speakers, num_resamples=45, seed=1)
    monkeypatch.setattr(bootstrap, "CHUNK_SIZE", 7)
    chunked = bootstrap.bootstrap(y_true, y_pred, speakers, num_resamples=45, seed=1)
    for figure in bootstrap.FIGURES:   # equal up to BLAS summation order
        assert chunked[figure].to_dict() == pytest.approx(expected[figure].to_dict(), abs=1e-12)


def test_more_speakers_give_narrower_intervals():
    widths = {}
    for num_speakers in (20, 200):
        y_true, speakers = make_split(num_speakers, 5, seed=1)
        y_pred = noisy_prediction(y_true, 0.2, seed=2)
        widths[num_speakers] = bootstrap.bootstrap(y_true, y_pred, speakers, num_resamples=300)
    for figure in bootstrap.FIGURES:
        assert width(widths[200][figure]) < 0.6 * width(widths[20][figure]), figure


def test_resampling_speakers_not_clips_widens_intervals_for_correlated_clips():
    # Errors shared by all clips of a speaker: 40 speakers carry the information, not 400 clips.
    y_true, speakers = make_split(40, 10, seed=3)
    y_pred = noisy_prediction(y_true, 0.02, seed=4, speakers=speakers, speaker_noise=0.2)
    by_speaker = bootstrap.bootstrap(y_true, y_pred, speakers, num_resamples=300)
    by_clip = bootstrap.bootstrap(y_true, y_pred, np.arange(len(speakers)), num_resamples=300)
    for figure in ("mean_ccc", "mae", "hmean"):
        assert width(by_speaker[figure]) > 1.8 * width(by_clip[figure]), figure


def test_bad_inputs_raise_value_error():
    y_true, speakers = make_split(5, 2)
    y_pred = noisy_prediction(y_true, 0.1, seed=0)
    with pytest.raises(ValueError, match="num_resamples"):
        bootstrap.bootstrap(y_true, y_pred, speakers, num_resamples=0)
    with pytest.raises(ValueError, match="num_resamples"):
        bootstrap.speaker_resample_weights(speakers, 0, seed=0)
    for confidence in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="confidence"):
            bootstrap.bootstrap(y_true, y_pred, speakers, confidence=confidence)
    with pytest.raises(ValueError, match="clips"):
        bootstrap.bootstrap(y_true, y_pred, speakers[:-1])
    with pytest.raises(ValueError, match="clips"):
        bootstrap.bootstrap(y_true, {**y_pred, "age": y_pred["age"][:-1]}, speakers)
    with pytest.raises(ValueError, match="shape"):
        bootstrap.bootstrap(y_true, {**y_pred, "emotion": y_pred["emotion"][:, :2]}, speakers)
    with pytest.raises(ValueError, match="empty"):
        bootstrap.bootstrap(y_true, [], speakers)
    with pytest.raises(ValueError, match="lacks age"):
        bootstrap.bootstrap(y_true, {"emotion": y_pred["emotion"], "country": y_pred["country"]},
                            speakers)
    with pytest.raises(ValueError, match="speakers"):
        bootstrap.bootstrap(y_true, y_pred, [])



@pytest.mark.parametrize("absent", ["age", "emotion", "country"])
def test_a_task_without_labels_has_no_interval_and_the_hmean_leaves_it_out(absent):
    y_true, speakers = make_split(30, 4)
    y_pred = noisy_prediction(y_true, 0.2, seed=0)
    del y_true[absent], y_pred[absent]
    schema = LabelSchema(emotion_columns=() if absent == "emotion" else ("A", "B", "C"),
                         class_column="" if absent == "country" else "Country",
                         age_column="" if absent == "age" else "Age")
    if absent != "country":
        schema = schema.with_classes(["w", "x", "y", "z"])
    figure = {"emotion": "mean_ccc", "country": "uar", "age": "mae"}[absent]
    result = bootstrap.bootstrap(y_true, y_pred, speakers, num_resamples=50, seed=0)
    evaluated = scoring.evaluate(y_true, y_pred, schema, "Val")
    assert result[figure] is None and getattr(evaluated, figure) is None
    for name, interval in result.items():
        if name != figure:
            assert interval.estimate == pytest.approx(getattr(evaluated, name))
            assert interval.low <= interval.estimate <= interval.high
    weights = bootstrap.speaker_resample_weights(speakers, 3, seed=1)
    figures = bootstrap.weighted_figures(y_true, y_pred, weights)
    assert figure not in figures
    repeated = {task: np.repeat(np.asarray(value), weights[0].astype(int), axis=0)
                for task, value in y_pred.items()}
    truth = {task: np.repeat(value, weights[0].astype(int), axis=0)
             for task, value in y_true.items()}
    assert figures["hmean"][0] == pytest.approx(
        scoring.evaluate(truth, repeated, schema, "Val").hmean)


def test_intervals_from_few_speakers_come_with_a_caveat():
    assert "only 2 speakers" in bootstrap.few_speakers_caveat(2)       # EmoDB's Test
    assert bootstrap.few_speakers_caveat(bootstrap.FEW_SPEAKERS) == ""  # EmoGator's 19: none


if __name__ == "__main__":
    run_main()
