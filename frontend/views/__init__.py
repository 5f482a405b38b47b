"""The UI's pages, one module each with a `render()` that `frontend/app.py` registers.

Named `views`, not `pages`, because Streamlit treats a `pages/` folder beside the entry script
as scripts to list on its own.
"""
