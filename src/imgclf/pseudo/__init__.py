"""Pseudo-labels and distillation: a student experiment trained per fold on targets made by the
teacher models of the same fold only, so its OOF stays as honest as the teachers'."""
