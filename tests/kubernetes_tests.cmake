# Outpost on a real container runtime (included from tests/CMakeLists.txt): the overlay that
# `outpost bundle install --kubernetes deploy/k8s` renders, run by Debian's podman (`kube play`
# with runc and catatonit, tests/kubernetes/containers.conf) from the runtime image and model
# blobs a bundle pushed into docker-registry on loopback. What it proves and what differs from
# a real cluster: the header of tests/kubernetes/podman_test.py. Release build only (label
# no_sanitizer): the image ships the built `outpost`, which in the sanitizer build loads its
# subsystems from the build tree. The test starts six pods, each ready in a few seconds.
add_test(NAME kubernetes_podman_test
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/kubernetes/podman_test.py
                 $<TARGET_FILE_DIR:outpost>)
set_tests_properties(kubernetes_podman_test PROPERTIES LABELS no_sanitizer TIMEOUT 1800)

# The hub on the same runtime: deploy/k8s-hub rendered by `kubectl kustomize` through a test
# overlay and played by podman as three replicas on the bridge network, on a private
# PostgreSQL of the test's own (Debian's server binaries). What it proves and what differs
# from a real cluster: the header of tests/kubernetes/hub_podman_test.py. Release build only
# (label no_sanitizer), as above.
add_test(NAME kubernetes_hub_podman_test
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/kubernetes/hub_podman_test.py
                 $<TARGET_FILE_DIR:outpost>)
set_tests_properties(kubernetes_hub_podman_test PROPERTIES LABELS no_sanitizer TIMEOUT 600)
