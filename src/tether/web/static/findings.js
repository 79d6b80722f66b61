// "Except…" on a finding fills the new-exception form with its identity and detector.
document.querySelectorAll("a.except").forEach(function (link) {
  link.addEventListener("click", function () {
    var form = document.querySelector("#new-exception form");
    form.identity.value = link.dataset.identity;
    form.detector.value = link.dataset.detector;
    form.owner.focus();
  });
});
