"""Reading input files: bytes from a file or zip member (``source``), split into raw fields
(``csv_tokenizer``), typed and checked (``validate``), and assembled into the one schema every
parser returns (``records``, ``assemble``), for MovieLens releases (``movielens``,
``movie_fields``) and plain CSV exports (``csvfile``). Nothing here touches the database.
"""
