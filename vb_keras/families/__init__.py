"""Model families: one module each (`resnets`, `frozen_embedder`, `fine_tuned_embedder`), with
its config, model builder, reader and preprocessor; `registry` lists them."""
