"""Writers of brainvae's results as files. The analyses compute (arrays in, small results out)
and never write; every writer here goes through brainvae.atomic, so a file or a result folder is
written whole or not at all.

- tables: CSV (neutralised for spreadsheets, 8 significant digits) and JSON.
- pictures: traversal PNGs (plain and labelled) and looping GIFs.
- figures: the projective-field figure as PNG, PDF or SVG.
- receptive_tables: a receptive-field run's folder of CSVs and summary.json; impact.csv read back.
- projective_folder: a projective-field run's folder (NIfTI maps, montage.png, projective.csv,
  summary.json).
- population_folder: a population analysis's folder (classification in Table 2's layout,
  confusion, PCA reference, scans, bias check, brain scores, weights as CSV; figures as PNG;
  summary.json); population_summary: its summary.json record and the plain-words lines the
  command prints.
- longitudinal_folder: an aging and disease analysis's folder (loadings, pairs, trajectories
  and per-ROI tables as CSV; each group's trajectory and its change as NIfTI series on the
  population's grid; strip.png, trajectory.gif, loadings.png; summary.json with every
  direction's stability verdict); longitudinal_rois: mean decoded intensity per atlas ROI
  along each trajectory; longitudinal_summary: stability verdicts, summary.json and the lines
  the command prints.
"""
