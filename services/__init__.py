"""TuneFlow's services. They never import each other; they meet through `shared` and the queue."""
