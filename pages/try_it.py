"""🖼️ Try it: classify one image with the run's universal model: universal top-k and every
domain's top-k. Only this page loads torch (lazily, when you press Classify)."""

import numpy as np
import streamlit as st

from ui import data
from ui.common import ensure_navigation, guard, require_run
from ui.prediction import prediction_tables
from ui.upload import read_image, upload_error

ensure_navigation()
st.title("🖼️ Try it")
run = require_run("universal")
names, class_names = data.domain_info(str(run.path))
methods = run.methods_with_model()
if not methods:
    st.info("This run has no universal model file yet (model.pt); train one on 🎯 Universal model.")
    st.stop()

c1, c2 = st.columns([1, 2])
method = c1.selectbox("Universal model", methods, key="try_method")
top_k = c1.slider("Top k", 1, 10, 5, key="try_topk")
src = c1.radio("Image", ["📤 Upload", "🎲 A test image"], key="try_src")
image = None
if src == "📤 Upload":
    up = c2.file_uploader(
        "PNG, JPEG, WEBP or BMP, up to 10 MB", type=["png", "jpg", "jpeg", "webp", "bmp"], key="try_upload"
    )
    if up is not None:
        try:
            image = read_image(up.getvalue())
        except (ValueError, TypeError) as exc:  # read_image turns every decoding failure into these
            c2.error(upload_error(up.name, exc), icon="🚫")
else:
    a = c2.selectbox("Domain", range(len(names)), format_func=lambda a: names[a], key="try_domain")
    n_test = run.domains()[a].get("n_test", 0)
    k = c2.number_input("Test image #", 0, max(int(n_test) - 1, 0), 0, key="try_index")
    imgs = data.test_images(str(run.path), a, (int(k),))
    if imgs:
        image = imgs[0]
        label = data.test_label(str(run.path), a, int(k))
        if label is not None:
            c2.caption(f"True class in {names[a]}: **{class_names[a][label]}**")
    else:
        c2.warning("The test images of this run cannot be re-opened here; upload an image instead.")

if image is not None:
    c2.image(image, width=192)
    if c2.button("🔮 Classify", type="primary", key="try_go"):
        with (
            guard("Classifying the image", "Check the run finished its universal step."),
            st.spinner("Loading the model…"),
        ):
            from core.inference import predict_image  # torch: imported only here, on demand

            st.session_state.try_result = predict_image(str(run.path), np.array(image), method=method, top_k=top_k)

res = st.session_state.get("try_result")
if res:
    prediction_tables(res, method)
