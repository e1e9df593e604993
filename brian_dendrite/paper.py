"""What the paper reports: its MNIST test errors per condition, and where it reports them.

Guerguiev, Lillicrap & Richards (2017), "Towards deep learning with segregated
dendrites", eLife 6:e22901 (https://elifesciences.org/articles/22901). All
results are MNIST test errors on the 10,000 test images after 60 epochs of
60,000 examples; a reported percentage is the mean of n = 20 repeated tests of
the final weights of *one* trained network (the paper reports no independent
training seeds). See specification section 3.

Each condition is one of the package's named models (``brian-dendrite models``).
:data:`REPORTED` holds what the paper says about each, with the section or figure
where it says it; :data:`TEST_ERRORS` the conditions for which the text gives a
number, :data:`STATEMENTS` the others, where only the figure shows the result and
the text describes it in words.

Examples
--------
>>> from brian_dendrite.paper import REPORTED, TEST_ERRORS
>>> TEST_ERRORS["one_hidden"]
4.1
>>> REPORTED["sparse_feedback"].source
"§Results 'Conditions on feedback weights', Fig. 8B"
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOI", "EPOCHS", "REFERENCE", "REPORTED", "STATEMENTS", "TEST_ERRORS", "TEST_IMAGES", "URL", "Reported"]

#: The paper.
REFERENCE = ('Guerguiev J, Lillicrap TP, Richards BA (2017). "Towards deep learning with segregated dendrites". '
             "eLife 6:e22901")
#: The paper's DOI.
DOI = "10.7554/eLife.22901"
#: The paper on the eLife site.
URL = "https://elifesciences.org/articles/22901"

#: Epochs (of 60,000 examples) after which the paper reports its test errors.
EPOCHS = 60
#: Test images behind every reported test error (the whole MNIST test set).
TEST_IMAGES = 10000


@dataclass(frozen=True)
class Reported:
    """What the paper reports for one condition.

    Attributes
    ----------
    test_error : float or None
        Test error (%) after :data:`EPOCHS` epochs as the text states it; None where
        only a figure shows it.
    statement : str
        The result in a few words (for tables), the paper's where it gives no number.
    source : str
        Section and figure of the paper.
    """

    test_error: float | None
    statement: str
    source: str


_DEEP_LEARNING = "§Results 'Deep learning with segregated dendrites'"
_FEEDBACK = "§Results 'Conditions on feedback weights'"
_ATTENUATION = "§Results 'Learning with partial apical attenuation'"

#: Model name -> what the paper reports for that condition.
REPORTED: dict[str, Reported] = {
    "no_hidden": Reported(8.3, "rapidly hit an asymptote at 8.3 %", f"{_DEEP_LEARNING}, Fig. 6B (gray)"),
    "one_hidden": Reported(4.1, "4.1 % by the 60th epoch, still improving", f"{_DEEP_LEARNING}, Fig. 6B (blue)"),
    "two_hidden": Reported(3.2, "3.2 % by epoch 60; learned faster than one hidden layer",
                           f"{_DEEP_LEARNING}, Fig. 6B (red)"),
    "stochastic_plateau": Reported(None, "similar to one_hidden", "Fig. 6—figure supplement 1"),
    "sparse_feedback": Reported(3.7, "3.7 % vs 4.1 % with regular feedback", f"{_FEEDBACK}, Fig. 8B"),
    "sparse_feedback_unamplified": Reported(None, "worse than regular (20 epochs)", "Fig. 8—figure supplement 1"),
    "symmetric_feedback": Reported(3.6, "3.6 % (better than random feedback)", f"{_FEEDBACK}, Fig. 8D (red)"),
    "noisy_symmetric_feedback": Reported(None, "slightly worse than random", f"{_FEEDBACK}, Fig. 8D (blue)"),
    "two_hidden_apical_0_05": Reported(None, "very little difference from g_A = 0", f"{_ATTENUATION}, Fig. 9B"),
    "two_hidden_apical_0_6": Reported(None, "significantly impaired", f"{_ATTENUATION}, Fig. 9B"),
}

#: Model name -> test error (%) after 60 epochs, where the paper's text gives a number.
TEST_ERRORS: dict[str, float] = {name: r.test_error for name, r in REPORTED.items() if r.test_error is not None}

#: Model name -> the paper's result in words, where its text gives no number.
STATEMENTS: dict[str, str] = {name: r.statement for name, r in REPORTED.items() if r.test_error is None}
