"""Fixture MOS data sets written where pyiqa's own dataset configs look for them."""

import csv

import numpy as np
import pytest
import torch

from fixtures.mos_fixture import make_fr_fixture
from spips_pyiqa.data.pyiqa_datasets import fr_dataset_names, fr_dataset_options, missing_paths

#: What pyiqa 0.1.16's default_dataset_configs.yml and the data sets' own file names lead to
#: (written out by hand, not derived from the code under test).
EXPECTED = {
    'live': ('LIVEIQA_release2/refimgs/astronaut.bmp', 'LIVEIQA_release2/wn/img1.bmp',
             'meta_info/meta_info_LIVEIQADataset.csv', (1, 100), True),
    'csiq': ('CSIQ/src_imgs/astronaut.png', 'CSIQ/dst_imgs/astronaut.AWGN.1.png',
             'meta_info/meta_info_CSIQDataset.csv', (0, 1), True),
    'tid2013': ('tid2013/reference_images/I01.BMP', 'tid2013/distorted_images/i01_01_1.bmp',
                'meta_info/meta_info_TID2013Dataset.csv', (0, 9), False),
    'kadid10k': ('kadid10k/images/I01.png', 'kadid10k/images/I01_11_01.png',
                 'meta_info/meta_info_KADID10kDataset.csv', (1, 5), False),
    'pipal': ('PIPAL/Train_Ref/A0001.bmp', 'PIPAL/Dist_Imgs/A0001_00_00.bmp',
              'meta_info/meta_info_PIPALDataset.csv', (0, 1), False),
}


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_fixture_loads_through_pyiqa_with_its_own_config(tmp_path, name):
    import pyiqa
    from pyiqa.data import build_dataset

    root = tmp_path / 'datasets'
    options = make_fr_fixture(root, name, n_scenes=3, size=32)
    ref, dist, meta, (lo, hi), dmos = EXPECTED[name]
    assert (root / ref).is_file() and (root / dist).is_file() and (root / meta).is_file()
    assert missing_paths(options) == []
    phases = ('train', 'val', 'test') if name == 'pipal' else ('test',)
    total = 0
    for phase in phases:
        # pyiqa's own loader, rewriting its config's ./datasets itself (no download: files exist)
        dataset = pyiqa.load_dataset(name, data_root=str(root), phase=phase)
        ours = build_dataset({**options, 'phase': phase})
        assert len(dataset) == len(ours) == (12 if name == 'pipal' else 36)  # 3 scenes x 3 kinds x 4
        total += len(dataset)
        labels = np.array([float(dataset[i]['mos_label']) for i in range(len(dataset))])
        assert lo <= labels.min() and labels.max() <= hi
        steps = np.diff(labels.reshape(-1, 4), axis=1)  # 4 severities per (scene, kind), mild first
        assert np.all(steps > 0) if dmos else np.all(steps < 0)
        sample = dataset[0]
        assert sample['img'].shape == sample['ref_img'].shape == (3, 32, 32)
        assert not torch.equal(sample['img'], sample['ref_img'])
    assert total == 36
    with (root / meta).open(newline='') as handle:
        rows = list(csv.reader(handle))
    scenes = {row[0] for row in rows[1:]}
    assert len(scenes) == 3 and len(rows) == 37
    if name == 'pipal':  # whole scenes per phase
        splits = {(row[0], row[3]) for row in rows[1:]}
        assert splits == {('A0001.bmp', 'train'), ('A0002.bmp', 'val'), ('A0003.bmp', 'test')}


def test_same_arguments_same_bytes_and_seed_changes_scores(tmp_path):
    first = make_fr_fixture(tmp_path / 'a', 'kadid10k', n_scenes=1, size=16)
    make_fr_fixture(tmp_path / 'b', 'kadid10k', n_scenes=1, size=16)
    make_fr_fixture(tmp_path / 'c', 'kadid10k', n_scenes=1, size=16, seed=1)
    meta = 'meta_info/meta_info_KADID10kDataset.csv'
    assert (tmp_path / 'a' / meta).read_bytes() == (tmp_path / 'b' / meta).read_bytes()
    assert (tmp_path / 'a' / meta).read_bytes() != (tmp_path / 'c' / meta).read_bytes()
    assert first['dataroot_target'] == str(tmp_path / 'a' / 'kadid10k' / 'images')


def test_bad_arguments_are_refused(tmp_path):
    assert {'live', 'csiq', 'tid2013', 'kadid10k', 'pipal'} <= set(fr_dataset_names())
    with pytest.raises(ValueError, match='not a full-reference data set'):
        fr_dataset_options('koniq10k', tmp_path)
    with pytest.raises(ValueError, match='no fixture layout'):
        make_fr_fixture(tmp_path, 'tid2008')
    with pytest.raises(ValueError, match='size'):
        make_fr_fixture(tmp_path, 'live', size=400)
    with pytest.raises(ValueError, match='unknown distortion'):
        make_fr_fixture(tmp_path, 'live', kinds=('noise', 'rain'))
