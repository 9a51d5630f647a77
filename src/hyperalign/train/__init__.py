"""Fine-tuning baselines that the evaluation compares hyperalign with. `ditto`: DITTO (Shaikh et al. 2024).

Nothing here imports torch until a model is loaded; the ML stack is the optional extra `pip install -e ".[train]"`."""
