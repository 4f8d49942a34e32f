"""``benchmark --only scoring`` (spips_pyiqa.benchmark.scoring): the synthetic pairs, the parsing of
both tools' results, and (slow) the whole table on a few pairs."""

import pytest
from PIL import Image

from spips_pyiqa.benchmark.scoring import _our_mean, pyiqa_mean, scoring_table, write_pairs


def test_write_pairs_makes_distorted_pairs_of_the_size(tmp_path):
    target, ref = write_pairs(tmp_path / 'pairs', 5, 40, 60, distinct=3)
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted(p.name for p in ref.iterdir()) == [f'{i:05d}.png' for i in range(5)]
    for name in names:
        with Image.open(target / name) as t, Image.open(ref / name) as r:
            assert t.size == r.size == (60, 40) and t.mode == 'RGB'
            assert t.tobytes() != r.tobytes()  # every target is distorted
    assert (target / '00003.png').read_bytes() == (target / '00000.png').read_bytes()  # copies past `distinct`
    assert (ref / '00001.png').read_bytes() != (ref / '00000.png').read_bytes()  # distinct photographs


def test_means_of_both_tools_are_read(tmp_path):
    # what pyiqa's CLI pprints (keys sorted), with and without numpy's scalar repr
    printed = "{'lpips': {'mean': np.float64(0.0660)},\n 'spips': {'mean': np.float64(0.0049)}}"
    assert pyiqa_mean(printed, 'spips') == 0.0049 and pyiqa_mean(printed, 'lpips') == 0.066
    assert pyiqa_mean("{'spips': {'mean': 1.5e-05}}", 'spips') == 1.5e-05
    assert pyiqa_mean(printed, 'dists') != pyiqa_mean(printed, 'dists')  # NaN: not printed
    out = tmp_path / 'scores.csv'
    out.write_text('name,score,metric,target,ref\na.png,0.25,spips,a,b\nb.png,0.75,spips,c,d\n')
    assert _our_mean(out, 'spips') == 0.5


@pytest.mark.slow
def test_scoring_table_on_two_pairs(tmp_path):
    # two metrics: psnr is printed first by pyiqa's CLI (sorted keys), the mean compared is spips'
    table = scoring_table(2, ['512'], ['spips', 'psnr'], 'test machine', say=lambda _: None)
    runs = [row['run'] for row in table.rows]
    assert runs[:4] == ['spips_pyiqa score', 'spips_pyiqa score (torchrun)', 'pyiqa CLI',
                        'pyiqa CLI (2 processes, half the pairs each)']
    assert {'part: decode', 'part: write', 'part: metric spips (in-process, one pair per call)',
            'part: metric psnr (in-process, one pair per call)'} <= set(runs)
    assert all(row['seconds'] > 0 and row['size'] == '512x512' for row in table.rows)
    means = next(note for note in table.notes if note.startswith('512x512: mean spips'))
    values = [float(part.split()[-1]) for part in means.split(' (')[0].split(': mean spips by ')[1].split(', ')]
    assert len(values) == 3 and max(values) - min(values) < 1e-4, means  # both tools scored the same pairs
