"""The permutation test of section 3.1: do the class and age labels, given as *inputs*, help a
Conformer-based model predict the emotions?

Each trial trains a fresh emotion-only head on the frozen window embeddings, with the clip's
class (HUME-VB: Country) and age concatenated to its pooled clip vector, and scores the Val mean
CCC. Three conditions differ only in the class and age of the *training* clips:

  true       the real labels: the spread of these runs is the "true distribution" (SGD noise only);
  shuffled   class and age each permuted across the training set, with different seeds: the
             marginal distributions are kept, the link to the clip is broken ("randomly shuffled");
  incorrect  every training clip gets a wrong class and a wrong age, so the labels no longer follow
             the original distributions ("incorrectly assigned").

Val always keeps the true class and age, and the emotion targets are never altered: the paper scores
every model "from the unaltered validation set". Two-sample t-tests then compare the conditions
(the paper: true vs shuffled t = 0.14, p = 0.89; true vs incorrect t = 4.7, p < 0.01 on HUME-VB).

The modules: `arrays` (the padded embeddings and labels: `data_from_sequences`), `conditions`
(the altered labels, the trial seeds), `training` (one trial: `train_and_score`), `summary`
(`summarize`, the t-tests, and `summary_text`, the Markdown the program prints), `figure`
(`write_density_plot`, Figure 1) and `resumable` (`run`, which writes
`<output_dir>/permutation_test.json` after every trial, so a killed run resumes where it stopped).
Their public names are all here.
"""

from vb_keras.analysis.permutation.arrays import (
    PermutationData, SplitArrays, check_schema, data_from_sequences, split_arrays)
from vb_keras.analysis.permutation.conditions import (
    CONDITION_LABELS, CONDITIONS, incorrect_labels, shuffled_labels, training_labels, trial_seed)
from vb_keras.analysis.permutation.figure import CONDITION_STYLES, write_density_plot
from vb_keras.analysis.permutation.resumable import PLOT_FILE, RESULT_FILE, requested_trials, run
from vb_keras.analysis.permutation.summary import T_TEST, summarize, summary_text
from vb_keras.analysis.permutation.training import ADAM_EPSILON, train_and_score

__all__ = [
    "ADAM_EPSILON", "CONDITIONS", "CONDITION_LABELS", "CONDITION_STYLES", "PLOT_FILE",
    "PermutationData", "RESULT_FILE", "SplitArrays", "T_TEST", "check_schema",
    "data_from_sequences", "incorrect_labels", "requested_trials", "run", "shuffled_labels",
    "split_arrays", "summarize", "summary_text", "train_and_score", "training_labels",
    "trial_seed", "write_density_plot"]
