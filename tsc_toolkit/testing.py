"""What scikit-learn's own estimator checks may fail on, and why.

scikit-learn's ``check_estimator`` assumes rows of features. :class:`~tsc_toolkit.CNNKMeans`
reads rows as time series, so a few checks meet a different, intended behaviour. They are
listed, each with its reason, by :func:`expected_failed_checks`, in the form that
``check_estimator(..., expected_failed_checks=...)`` (scikit-learn >= 1.6) takes.
:class:`~tsc_toolkit.clustering.kmeans.WebScaleKMeans` and the clustering stage
:class:`~tsc_toolkit.clustering.FeatureClusterer` are vector-space estimators and pass them
all.

Examples
--------
>>> from tsc_toolkit.clustering.kmeans import WebScaleKMeans
>>> expected_failed_checks(WebScaleKMeans())
{}
>>> from tsc_toolkit import CNNKMeans
>>> sorted(expected_failed_checks(CNNKMeans()))[:2]
['check_clustering', 'check_estimators_pickle']
"""

from __future__ import annotations

__all__ = ["expected_failed_checks"]

_OTHER_LENGTHS = ("a model trained on series of one length embeds series of any other length "
                  "(the causal CNN pools over time), so another number of columns at "
                  "transform/predict is valid input, not an error")

_CNN_KMEANS = {
    "check_fit2d_1feature": (
        "an (n, 1) array is n series of one time step each, fewer than the two observed "
        "values a series needs; the error says so instead of naming features"),
    "check_fit2d_predict1d": (
        "a 1-D array is one series (its values are time steps), so predict answers for it "
        "instead of refusing it"),
    "check_n_features_in_after_fitting": _OTHER_LENGTHS,
    "check_transformer_general": _OTHER_LENGTHS,
    "check_clustering": (
        "the check's rows of 2 numbers are series of 2 time steps; CNN-KMeans groups series "
        "by the shape the encoder sees, not points by their position in the plane, so the "
        "blob labels are not what it finds (it does run, and labels every row)"),
    "check_estimators_pickle": (
        "the check puts 10 NaN into 2-step series, leaving some with a single observed "
        "value, which a series must not have; the pickling round trip itself is tested in "
        "tests/test_estimator_checks.py"),
}


_SERIES_TRANSFORMER = {
    "check_fit2d_1feature": _CNN_KMEANS["check_fit2d_1feature"],
    "check_fit2d_predict1d": (
        "a 1-D array is one series (its values are time steps), so transform answers for it "
        "instead of refusing it"),
    "check_fit1d": (
        "a 1-D array is one series (its values are time steps), so fit trains on it instead "
        "of refusing it"),
    "check_n_features_in_after_fitting": _OTHER_LENGTHS,
    "check_transformer_general": _OTHER_LENGTHS,
    "check_transformer_preserve_dtypes": (
        "the output is float32 whatever the input's dtype, as every array of the toolkit "
        "(the data convention is float32 with NaN for gaps)"),
    "check_estimators_pickle": _CNN_KMEANS["check_estimators_pickle"],
}


def expected_failed_checks(estimator) -> dict[str, str]:
    """The scikit-learn checks ``estimator`` is expected to fail: ``{check name: reason}``.

    Parameters
    ----------
    estimator : estimator instance
        A :class:`~tsc_toolkit.CNNKMeans`, or one of the transformers of series
        (:class:`~tsc_toolkit.embedding.TLossEncoder`,
        :class:`~tsc_toolkit.views.random_kernels.RandomKernelFeatures`): a few time-series semantics
        differ from scikit-learn's rows of features. Any other toolkit estimator: none.

    Returns
    -------
    dict of str to str
        Pass it as ``check_estimator(estimator, expected_failed_checks=...)``.
    """
    from .cnn_kmeans import CNNKMeans
    from .embedding import TLossEncoder
    from .views.random_kernels import RandomKernelFeatures

    if isinstance(estimator, CNNKMeans):
        return dict(_CNN_KMEANS)
    if isinstance(estimator, (TLossEncoder, RandomKernelFeatures)):
        return dict(_SERIES_TRANSFORMER)
    return {}
