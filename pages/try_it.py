"""🖼️ Try it: classify one image with the run's universal model: universal top-k and every
domain's top-k as the universal model maps it (d_a = M_a p). Only this page loads torch
(lazily, when you press Classify)."""

import hashlib

import numpy as np
import streamlit as st

from core.runs import F
from ui import data
from ui.common import ensure_navigation, guard, require_run
from ui.prediction import prediction_tables
from ui.runview import best_method
from ui.upload import read_image, upload_error

RESULT_KEY = "try_result"  # session: {"input": what was classified, "method": ..., "res": ...}
METHOD_KEY = "try_method"

ensure_navigation()
st.title("🖼️ Try it")
run = require_run("universal")
rd = str(run.path)
names, class_names = data.domain_info(rd)
methods = run.methods_with_model()
if not methods:
    st.info("This run has no universal model file yet (model.pt); train one on 🎯 Universal model.")
    st.stop()
if st.session_state.get(METHOD_KEY) not in methods:  # first visit (or another run): its best model
    st.session_state[METHOD_KEY] = best_method((run.results_json() or {}).get("headline"), methods) or methods[0]

c1, c2 = st.columns([1, 2])
method = c1.selectbox(
    "Universal model",
    methods,
    key=METHOD_KEY,
    help="One universal model per selection method; the page opens on the run's best "
    "(best mean universal test accuracy).",
)
top_k = c1.slider("Top k", 1, 10, 5, key="try_topk")
src = c1.radio("Image", ["📤 Upload", "🎲 A test image"], key="try_src")
image, source = None, None
if src == "📤 Upload":
    up = c2.file_uploader(
        "PNG, JPEG, WEBP or BMP, up to 10 MB", type=["png", "jpg", "jpeg", "webp", "bmp"], key="try_upload"
    )
    if up is not None:
        source = ("upload", up.name, hashlib.sha256(up.getvalue()).hexdigest())
        try:
            image = read_image(up.getvalue())
        except (ValueError, TypeError) as exc:  # read_image turns every decoding failure into these
            c2.error(upload_error(up.name, exc), icon="🚫")
else:
    a = c2.selectbox("Domain", range(len(names)), format_func=lambda a: names[a], key="try_domain")
    n_test = run.domains()[a].get("n_test", 0)
    k = c2.number_input("Test image #", 0, max(int(n_test) - 1, 0), 0, key="try_index")
    source = ("test", a, int(k))
    imgs = data.test_images(rd, a, (int(k),))
    if imgs:
        image = imgs[0]
        label = data.test_label(rd, a, int(k))
        if label is not None:
            c2.caption(f"True class in {names[a]}: **{class_names[a][label]}**")
    else:
        c2.warning("The test images of this run cannot be re-opened here; upload an image instead.")

shown = st.session_state.get(RESULT_KEY)
if isinstance(shown, dict) and (shown.get("input") != source or shown.get("method") != method):
    st.session_state.pop(RESULT_KEY, None)  # a new image or model: the old tables are not its answer

if image is not None:
    c2.image(image, width=192)
    if c2.button("🔮 Classify", type="primary", key="try_go"):
        with (
            guard("Classifying the image", "Check the run finished its universal step."),
            st.spinner("Loading the model…"),
        ):
            from core.inference import predict_image  # torch: imported only here, on demand

            tax = data.saved_taxonomy(rd, method, data.stamp_of(rd, F.taxonomy(method, "taxonomy.json")))
            every = max([len(tax.classes) if tax is not None else 1, *(len(c) for c in class_names)])
            res = predict_image(rd, np.array(image), method=method, top_k=every)  # all: the sums need them
            st.session_state[RESULT_KEY] = {"input": source, "method": method, "res": res}

shown = st.session_state.get(RESULT_KEY)
if image is not None and isinstance(shown, dict):
    prediction_tables(shown["res"], method, top_k, dict(zip(names, (len(c) for c in class_names))))
