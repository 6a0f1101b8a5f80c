"""Quality-aware pretraining (QPT) of the KVQ backbone: contrastive on degradations."""
