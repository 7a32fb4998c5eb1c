"""Run names and checkpoint paths are a contract: a checkpoint or run record written by one version
of infodrop must be found by the next. Every row below is what the code produced before the
experiments layer was reshaped (commit 0c3f52d, issue 10): the config's changed model entries in
``Config`` field order, and ``models/<experiment>/<name>.pt``, ``runs/<experiment>/<name>/``,
``plots/<experiment>/<name>/``. Entries that cannot change the trained model (folders, epochs,
progress, plane and prepare settings) stay out of the name."""

from __future__ import annotations

import pytest

from infodrop.experiments import load_experiment
from infodrop.experiments.naming import run_paths
from infodrop.experiments.session import compose

# (experiment, words after `with`, run name) for defaults, presets, and changed entries.
RUN_NAMES = [
    ('cifar', [],
     'default'),
    ('cifar', ['softplus'],
     'activations=softplus,lognorm_prior=True'),
    ('cifar', ['fullcnn'],
     'max_alpha=0.95,single_dropout=True,lr_milestones=40-80-120'),
    ('cifar', ['fullcnn', 'beta=20', 'filter_percentage=0.25'],
     'beta=20.0,max_alpha=0.95,filter_percentage=0.25,single_dropout=True,lr_milestones=40-80-120'),
    ('cifar', ['softplus', 'beta=1.0', 'filter_percentage=0.25'],
     'activations=softplus,lognorm_prior=True,beta=1.0,filter_percentage=0.25'),
    ('cifar', ['dropout=binary', 'keep_prob=0.7'],
     'dropout=binary,keep_prob=0.7'),
    ('cifar', ['dropout=gaussian', 'variance=0.5'],
     'dropout=gaussian,variance=0.5'),
    ('cifar', ['dropout=none'],
     'dropout=none'),
    ('cifar', ['beta=0.5'],
     'beta=0.5'),
    ('cifar', ['beta=3'],
     'default'),
    ('cifar', ['filter_percentage=0.25'],
     'filter_percentage=0.25'),
    ('cifar', ['lr_milestones=[40,80]', 'lr_decay=0.2'],
     'lr_milestones=40-80,lr_decay=0.2'),
    ('cifar', ['max_alpha=0.95', 'single_dropout=true'],
     'max_alpha=0.95,single_dropout=True'),
    ('cifar', ['epochs=3', 'device=cpu', 'progress=false', 'checkpoint_every=1', 'plot_images=2', 'correlation_mode=channels', 'source=x', 'data_dir=d'],
     'default'),
    ('cifar', ['seed=3', 'train_subset=100', 'test_subset=50', 'batch_size=32', 'lr=0.01', 'momentum=0.5', 'weight_decay=0.0', 'initial_keep_prob=1.0'],
     'initial_keep_prob=1.0,weight_decay=0.0,batch_size=32,lr=0.01,momentum=0.5,seed=3,train_subset=100,test_subset=50'),
    ('cluttered', [],
     'default'),
    ('cluttered', ['softplus'],
     'activations=softplus,lognorm_prior=True'),
    ('cluttered', ['beta=0.1'],
     'beta=0.1'),
    ('cluttered', ['filter_percentage=0.5'],
     'filter_percentage=0.5'),
    ('cluttered', ['dropout=binary'],
     'dropout=binary'),
    ('cluttered', ['dropout=none', 'max_alpha=0.5'],
     'dropout=none,max_alpha=0.5'),
    ('cluttered', ['canvas=32', 'distractors=2', 'train_count=10', 'valid_count=4', 'test_count=10', 'generator_seed=1', 'combine=add', 'epochs=1'],
     'default'),
    ('cluttered', ['lr_milestones=[10]', 'weight_decay=0.0005', 'initial_keep_prob=0.9'],
     'initial_keep_prob=0.9,weight_decay=0.0005,lr_milestones=10'),
    ('mnist', [],
     'default'),
    ('mnist', ['lenet'],
     'model=lenet'),
    ('mnist', ['information'],
     'dropout=information'),
    ('mnist', ['binary'],
     'dropout=binary'),
    ('mnist', ['fashion'],
     'dataset=fashion'),
    ('mnist', ['digits'],
     'dataset=digits'),
    ('mnist', ['high_variance'],
     'variance=1.0'),
    ('mnist', ['smoke'],
     'train_subset=512,test_subset=256'),
    ('mnist', ['dropout=information', 'beta=1', 'activation=relu'],
     'dropout=information,beta=1.0,activation=relu'),
    ('mnist', ['dropout=binary', 'dropout_rate=0.5'],
     'dropout=binary,dropout_rate=0.5'),
    ('mnist', ['variance=1.0', 'lenet', 'fashion'],
     'model=lenet,variance=1.0,dataset=fashion'),
    ('mnist', ['epochs=3', 'plane_every=1', 'plane_samples=100', 'noise_samples=2', 'bins=[4,16]', 'estimators=[auto]', 'plane_bounds=false', 'data_dir=x'],
     'default'),
    ('mnist', ['dataset=digits', 'train_subset=400', 'test_subset=120', 'batch_size=64', 'lr=0.05', 'momentum=0.0', 'weight_decay=0.0', 'seed=1'],
     'dataset=digits,train_subset=400,test_subset=120,batch_size=64,lr=0.05,momentum=0.0,weight_decay=0.0,seed=1'),
    ('cifar_resnet', [],
     'default'),
    ('cifar_resnet', ['linear_bottleneck'],
     'activation=identity'),
    ('cifar_resnet', ['information'],
     'dropout=information'),
    ('cifar_resnet', ['smoke'],
     'train_subset=128,test_subset=64'),
    ('cifar_resnet', ['dropout=binary', 'dropout_rate=0.3'],
     'dropout=binary,dropout_rate=0.3'),
    ('cifar_resnet', ['augment=false', 'bottleneck=64'],
     'bottleneck=64,augment=False'),
    ('cifar_resnet', ['variance=1.0', 'activation=relu', 'beta=1'],
     'variance=1.0,activation=relu,beta=1.0'),
]

# Custom folders move the artefacts, never the name.
FOLDERS = [
    ("cifar", ["beta=0.001", "models_dir=m", "runs_dir=r", "plots_dir=p"],
     ("m/cifar/beta=0.001.pt", "r/cifar/beta=0.001", "p/cifar/beta=0.001")),
    ("mnist", ["model=lenet", "dataset=digits", "train_subset=200", "test_subset=100", "batch_size=50", "models_dir=m",
               "runs_dir=r", "plots_dir=p"],
     ("m/mnist/model=lenet,dataset=digits,train_subset=200,test_subset=100,batch_size=50.pt",
      "r/mnist/model=lenet,dataset=digits,train_subset=200,test_subset=100,batch_size=50",
      "p/mnist/model=lenet,dataset=digits,train_subset=200,test_subset=100,batch_size=50")),
    ("cifar_resnet", ["epochs=1", "plane_every=1", "bins=[4]", "data_dir=x", "models_dir=m"],
     ("m/cifar_resnet/default.pt", "runs/cifar_resnet/default", "plots/cifar_resnet/default")),
]


def _paths(experiment: str, overrides: list[str]):
    return run_paths(compose(experiment, overrides), load_experiment(experiment).Config, experiment)


@pytest.mark.parametrize("experiment, overrides, name", RUN_NAMES)
def test_run_names_and_checkpoint_paths_are_those_of_earlier_versions(experiment, overrides, name):
    paths = _paths(experiment, overrides)
    assert paths.name == name
    assert str(paths.model_file) == f"models/{experiment}/{name}.pt"
    assert str(paths.run_dir) == f"runs/{experiment}/{name}"
    assert str(paths.plots_dir) == f"plots/{experiment}/{name}"


@pytest.mark.parametrize("experiment, overrides, expected", FOLDERS)
def test_folder_entries_move_the_artefacts_but_keep_the_name(experiment, overrides, expected):
    paths = _paths(experiment, overrides)
    assert (str(paths.model_file), str(paths.run_dir), str(paths.plots_dir)) == expected
